//! What every agent's I/O loop (`evapi.rs`, `esl.rs`, `ari.rs`,
//! `osips.rs`) does the same way with the session manager: register as the
//! `Disconnect` owner of its sessions, and run SessionSv1 methods on its
//! own behalf.

use std::sync::{Arc, PoisonError};

use serde_json::Value;

use super::methods::State;

/// Makes `link` the owner `owner` of the sessions an agent creates, so the
/// session manager's disconnects (money run out, `ForceDisconnect`, TTL)
/// reach it.
pub(crate) fn register(
    state: &State,
    owner: &str,
    link: Arc<dyn sessions::Disconnect + Send + Sync>,
) {
    if let Some(s) = state.sessions.get() {
        s.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(owner.to_owned(), link);
    }
}

/// A SessionSv1 method run as the API runs it, on behalf of the agent
/// `owner`: its reply object, or its error's text.
pub(crate) async fn call(
    state: &Arc<State>,
    owner: &str,
    method: &str,
    args: &Value,
) -> Result<Value, String> {
    let owner = sessions::Owner::Agent(owner.to_owned());
    let text = super::sessionsapi::call_as(state, method, args, owner)
        .await
        .map_err(|e| e.message.clone())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}
