use serde_json::json;

use super::*;

#[test]
fn every_key_present_in_order() {
    let r = KamReply {
        event: "CGR_SESSIONAUTH_REPLY".into(),
        transaction_index: "2112".into(),
        transaction_label: "1958452937".into(),
        ..KamReply::default()
    };
    assert_eq!(
        r.to_json(),
        r#"{"Event":"CGR_SESSIONAUTH_REPLY","TransactionIndex":"2112","TransactionLabel":"1958452937","Attributes":"","ResourceAllocation":"","MaxUsage":0,"Suppliers":"","Routes":"","Thresholds":"","StatQueues":"","Error":""}"#
    );
}

#[test]
fn filled_from_an_authorize_reply() {
    // a v0.10 SessionSv1.AuthorizeEvent reply
    let v = json!({
        "Attributes": {
            "MatchedProfiles": ["ATTR_1001_SIMPLEAUTH"],
            "AlteredFields": ["*req.Password", "RequestType"],
            "CGREvent": {"Tenant": "cgrates.org", "ID": "x",
                         "Event": {"Account": "1001", "Password": "CGRateS.org",
                                   "RequestType": "*prepaid"}}
        },
        "ResourceAllocation": "RES_ACNT_1001",
        "MaxUsage": 10_800_500_000_000_i64,
        "Suppliers": {"ProfileID": "SPL_1", "Sorting": "*lc", "SortedSuppliers": [
            {"SupplierID": "supplier1", "SupplierParameters": "", "SortingData": {}},
            {"SupplierID": "supplier2", "SupplierParameters": "gw2", "SortingData": {}}
        ]},
        "ThresholdIDs": ["THD_ACNT_1001"],
        "StatQueueIDs": ["Stats2", "Stats3"]
    });
    let mut r = KamReply::default();
    r.fill_from(&v);
    assert_eq!(r.attributes, "Password:CGRateS.org,RequestType:*prepaid");
    assert_eq!(r.resource_allocation, "RES_ACNT_1001");
    // 10800.5 s rounds half away from zero
    assert_eq!(r.max_usage, 10801);
    assert_eq!(r.suppliers, "supplier1,supplier2:gw2");
    assert_eq!(r.routes, r.suppliers);
    assert_eq!(r.thresholds, "THD_ACNT_1001");
    assert_eq!(r.stat_queues, "Stats2,Stats3");
    assert_eq!(r.error, "");
}

#[test]
fn master_shapes_and_refusals() {
    let attrs = json!({
        "AlteredFields": [{"MatchedProfileID": "cgrates.org:A", "Fields": ["*req.Password"]}],
        "CGREvent": {"Event": {"Password": "p"}}
    });
    assert_eq!(attributes_digest(&attrs), "Password:p");
    assert_eq!(attributes_digest(&Value::Null), "");
    let routes = json!([{"ProfileID": "R", "Routes": [{"RouteID": "r1", "RouteParameters": ""}]}]);
    assert_eq!(routes_digest(&routes), "r1");
    // MaxUsage 0 refuses; a duration string is read too; a nil is 0
    assert_eq!(max_usage_secs(&json!(0)), 0);
    assert_eq!(max_usage_secs(&json!(499_999_999)), 0);
    assert_eq!(max_usage_secs(&json!(500_000_000)), 1);
    assert_eq!(max_usage_secs(&json!("1m30s")), 90);
    assert_eq!(max_usage_secs(&json!("1.5s")), 2);
    assert_eq!(max_usage_secs(&json!(null)), 0);
    assert_eq!(max_usage_secs(&json!("garbage")), 0);
}

#[test]
fn disconnect_and_dlg_list_requests() {
    assert_eq!(
        disconnect_json("3287", "27845", "INSUFFICIENT_CREDIT"),
        r#"{"Event":"CGR_SESSION_DISCONNECT","HashEntry":"3287","HashId":"27845","Reason":"INSUFFICIENT_CREDIT"}"#
    );
    assert_eq!(dlg_list_json(), r#"{"Event":"CGR_DLG_LIST"}"#);
}

#[test]
fn dlg_list_reply() {
    // the shape the tutorial relays: {"event":"CGR_DLG_LIST_REPLY","jsonrpl_body":<dlg.list reply>}
    let raw = r#"{"event":"CGR_DLG_LIST_REPLY",
        "jsonrpl_body":{"jsonrpc":"2.0","result":[
          {"h_entry":3287,"h_id":27845,"call-id":"c1@10.0.0.1","from_uri":"sip:1001@x",
           "caller":{"tag":"ft1","contact":"sip:1001@10.0.0.1"},
           "variables":[{"cgrOriginID":"c1@10.0.0.1;ft1"},{"cgrReqType":"*prepaid"}]},
          {"h_entry":1,"h_id":2,"call-id":"c2","caller":{"tag":"ft2"},"variables":[
           {"cgrOriginHost":"kam2"}]}
        ],"id":1}}"#;
    let d = parse_dlg_list(raw.as_bytes(), "127.0.0.1:8448").unwrap();
    assert_eq!(
        d,
        vec![
            ActiveDialog {
                origin_id: "c1@10.0.0.1;ft1".into(),
                origin_host: "127.0.0.1:8448".into()
            },
            ActiveDialog {
                origin_id: "c2;ft2".into(),
                origin_host: "kam2".into()
            },
        ]
    );
    // no dialogs
    let empty =
        r#"{"event":"CGR_DLG_LIST_REPLY","jsonrpl_body":{"jsonrpc":"2.0","result":[],"id":1}}"#;
    assert!(parse_dlg_list(empty.as_bytes(), "h").unwrap().is_empty());
    // an error reply is not an empty list
    let err = r#"{"event":"CGR_DLG_LIST_REPLY","jsonrpl_body":{"jsonrpc":"2.0","error":{"code":500},"id":1}}"#;
    assert!(parse_dlg_list(err.as_bytes(), "h").is_err());
    assert!(parse_dlg_list(b"{not json", "h").is_err());
}
