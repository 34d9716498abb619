use super::*;

type Done = oneshot::Sender<Result<bool, sessions::Error>>;

/// A sink that holds every CDR until the test says it is durable.
#[derive(Default)]
pub(super) struct HoldSink(pub(super) Mutex<Vec<(sessions::Cdr, Done)>>);

impl CdrSink for HoldSink {
    fn submit(&self, cdr: sessions::Cdr, _: &AtomicU64) -> Pending {
        let (tx, rx) = oneshot::channel();
        lock(&self.0).push((cdr, tx));
        Pending::new(rx)
    }
}

pub(super) fn wait_until(mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A server state with no tariff plan, in-memory accounts and no CDR
/// store.
pub(super) fn memory_state() -> Arc<State> {
    Arc::new(State::new(
        rating::SharedTariffPlan::default(),
        rating::RoundingMode::Exact,
        rating::LoadPolicy::default(),
        None,
        "n".into(),
        super::super::store::Store::memory(),
        super::super::cdrs::Cdrs::unavailable(),
    ))
}

fn event(origin: &str) -> SessionEvent {
    let args = serde_json::json!({"Event": {"OriginID": origin, "OriginHost": "h",
                                                "RequestType": "*none", "Usage": "10s"}});
    SessionEvent::from_cgr_event(args.as_object().unwrap(), Owner::Api).unwrap()
}

/// The session's saved snapshot is forgotten only once the CDR written
/// just before is durable: a crash in between restores the session
/// (its end replays harmlessly), never loses the CDR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_waits_for_the_cdr_to_be_durable() {
    let state = memory_state();
    let store: Arc<dyn SessionStore> = Arc::new(sessions::MemorySessions::new());
    let sink = Arc::new(HoldSink::default());
    let section = SessionsSection {
        shards: 2,
        ..SessionsSection::default()
    };
    let (s, dialogs) = Sessions::start(
        state,
        &section,
        Arc::clone(&store),
        Arc::clone(&sink) as Arc<dyn CdrSink>,
    )
    .unwrap();
    assert!(dialogs.is_empty());
    s.call_runs(Op::Initiate, vec![event("f1")]).await.unwrap();
    let key = session_key(&event("f1").key());
    let keys = |st: &Arc<dyn SessionStore>| -> Vec<String> {
        st.list().unwrap().into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(keys(&store), std::slice::from_ref(&key));
    // TerminateSession is answered once its CDR is stored: not yet.
    let mut term = std::pin::pin!(s.call_runs(Op::Terminate, vec![event("f1")]));
    let early = tokio::time::timeout(Duration::from_millis(200), &mut term).await;
    assert!(early.is_err(), "answered before its CDR is durable");
    assert_eq!(s.active().await.unwrap().len(), 0);
    // The CDR is not durable yet: the session stays saved.
    assert_eq!(keys(&store), std::slice::from_ref(&key));
    let held = std::mem::take(&mut *lock(&sink.0));
    assert_eq!(held.len(), 1);
    for (cdr, durable) in held {
        assert_eq!(cdr.origin_id, "f1");
        durable.send(Ok(true)).unwrap();
    }
    term.await.unwrap();
    wait_until(|| keys(&store).is_empty());
    // A restart with the session still saved resumes it.
    s.call_runs(Op::Initiate, vec![event("f2")]).await.unwrap();
    s.stop_blocking();
    let state = memory_state();
    let (s2, _) = Sessions::start(
        state,
        &section,
        Arc::clone(&store),
        sink as Arc<dyn CdrSink>,
    )
    .unwrap();
    assert_eq!(s2.restored(), 1);
    let active = s2.active().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].event.origin_id, "f2");
    s2.stop_blocking();
}

#[test]
fn a_cgrid_always_goes_to_one_shard() {
    for n in 1..8 {
        let a = shard_of("abc", n);
        assert!(a < n);
        assert_eq!(a, shard_of("abc", n));
    }
    let spread: std::collections::BTreeSet<usize> = (0..64)
        .map(|i| shard_of(&sessions::cgrid(&format!("call-{i}"), "h"), 4))
        .collect();
    assert_eq!(spread.len(), 4);
}
