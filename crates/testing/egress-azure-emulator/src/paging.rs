//! List answers as ARM pages them: `{"value": [...], "nextLink": ...}` with at most the
//! configured page size per page; `nextLink` repeats the request URL with a `$skiptoken`.

use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::state::State;
use serde_json::{Value, json};

/// The page of `items` the request asks for (`$skiptoken` = offset of its first item).
pub(crate) fn page(state: &State, req: &Req, items: Vec<Value>) -> Result<Reply, ArmError> {
    let skip = match req.query.get("$skiptoken") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidSkipToken",
                    format!("The skip token '{t}' is invalid or has expired."),
                )
            })?,
    };
    let size = state.settings.page_size.max(1);
    let end = skip.saturating_add(size).min(items.len());
    let mut body = json!({ "value": items[skip..end].to_vec() });
    if end < items.len() {
        let mut url = format!("{}{}?", state.settings.base_url, req.path);
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                req.query
                    .iter()
                    .filter(|(k, _)| k.as_str() != "$skiptoken")
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .append_pair("$skiptoken", &end.to_string())
            .finish();
        url.push_str(&query);
        body["nextLink"] = json!(url);
    }
    Ok(Reply::json(200, body))
}
