//! `DecisionRequest::from_json` on arbitrary text, and `from_value` (what
//! the HTTP server uses) on the same document.
//!
//! Oracles (beyond "never panics"):
//! - an accepted request passes `validate`, serialises, and parses back equal;
//! - whatever `from_json` accepts, `from_value` accepts with an equal result
//!   (the reverse need not hold: `from_value` cannot see duplicate keys).
#![no_main]

use lexecon_core::DecisionRequest;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = DecisionRequest::from_json(text);
    let value: Option<Value> = serde_json::from_str(text).ok();
    let via_value = value.map(DecisionRequest::from_value);

    let Ok(req) = parsed else {
        return;
    };
    assert_eq!(req.validate(), Ok(()), "accepted request does not validate");

    let json = serde_json::to_string(&req).expect("request does not serialise");
    let back = DecisionRequest::from_json(&json)
        .unwrap_or_else(|e| panic!("serialised request {json} does not parse back: {e}"));
    assert_eq!(back, req, "request changes across a JSON round trip");

    match via_value {
        Some(Ok(r)) => assert_eq!(r, req, "from_value and from_json disagree"),
        Some(Err(e)) => panic!("from_value rejects what from_json accepts: {e}"),
        None => panic!("from_json accepted text that is not a JSON value"),
    }
});
