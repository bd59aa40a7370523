//! Embeds the Lexecon engine component in a wasmtime application that
//! brings its own ledger storage (an in-memory log) and signer (an Ed25519
//! key that never enters the sandbox).
//!
//! ```sh
//! scripts/build-component.sh
//! cargo run -p lexecon-wasmtime-embed -- target/lexecon.wasm
//! ```

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Types and traits generated from `wit/`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "lexecon:governance/governance",
        // The world's two WASI imports are wasmtime-wasi's.
        with: {
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
        },
        require_store_data_send: true,
    });
}

use bindings::GovernancePre;
use bindings::exports::lexecon::governance::engine::{DecisionRequest, NodeConfig};
use bindings::lexecon::governance::{signer, storage};

/// What each instance's store holds: WASI state, our ledger and our key.
struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    ledger: Vec<Vec<u8>>,
    key: SigningKey,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The ledger: an append-only list of entries' canonical bytes.
impl storage::Host for Host {
    fn len(&mut self) -> Result<u64, storage::StorageError> {
        Ok(self.ledger.len() as u64)
    }

    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, storage::StorageError> {
        Ok(usize::try_from(index)
            .ok()
            .and_then(|i| self.ledger.get(i))
            .cloned())
    }

    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, storage::StorageError> {
        let end = usize::try_from(end)
            .unwrap_or(usize::MAX)
            .min(self.ledger.len());
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(end);
        Ok(self.ledger.get(start..end).unwrap_or_default().to_vec())
    }

    fn find(&mut self, entry_hash: String) -> Result<Option<u64>, storage::StorageError> {
        // Every stored entry starts with `{"entry_hash":"<hash>"`.
        let prefix = format!("{{\"entry_hash\":\"{entry_hash}\"");
        Ok(self
            .ledger
            .iter()
            .position(|e| e.starts_with(prefix.as_bytes()))
            .map(|i| i as u64))
    }

    fn append(&mut self, entries: Vec<storage::EntryRecord>) -> Result<(), storage::StorageError> {
        let len = self.ledger.len() as u64;
        if entries.first().is_some_and(|e| e.index != len) {
            return Err(storage::StorageError::Conflict(len));
        }
        // A real store writes all of them durably (one transaction, fsync)
        // before returning: the engine acknowledges decisions only then.
        self.ledger.extend(entries.into_iter().map(|e| e.bytes));
        Ok(())
    }
}

/// The signer: the key stays here; the component only gets signatures.
impl signer::Host for Host {
    fn sign(&mut self, message: Vec<u8>) -> Result<Vec<u8>, signer::SignerError> {
        Ok(self.key.sign(&message).to_bytes().to_vec())
    }

    fn public_key(&mut self) -> Vec<u8> {
        self.key.verifying_key().to_bytes().to_vec()
    }

    fn key_id(&mut self) -> String {
        let digest = Sha256::digest(self.key.verifying_key().to_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("ed25519:{hex}")
    }
}

const POLICY: &str = r#"{
  "name": "Search only", "mode": "strict",
  "terms": [
    {"id": "actor:model", "type": "actor", "name": "model"},
    {"id": "action:read", "type": "action", "name": "read"},
    {"id": "data:public", "type": "data_class", "name": "public"},
    {"id": "tool:web_search", "type": "tool", "name": "web_search",
     "action": "action:read", "data_classes": ["data:public"]}
  ],
  "relations": [{"type": "permits", "subject": "actor:model",
                 "action": "action:read", "object": "data:public"}]
}"#;

fn request(tool: &str) -> DecisionRequest {
    DecisionRequest {
        request_id: None,
        actor: "model".into(),
        proposed_action: format!("Execute {tool}"),
        tool: tool.into(),
        user_intent: "Research".into(),
        risk_level: 1,
        data_classes: Vec::new(),
        context: Some(r#"{"user_id": "alice"}"#.into()),
        policy_mode: None,
        token_ttl: None,
    }
}

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/lexecon.wasm".into());

    // Compile and link once.
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, &path).map_err(|e| {
        e.context(format!(
            "cannot load `{path}`: run scripts/build-component.sh"
        ))
    })?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    storage::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |h| h)?;
    signer::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |h| h)?;
    let pre = GovernancePre::new(linker.instantiate_pre(&component)?)?;

    // One store per instance. The WASI context grants nothing: no files,
    // sockets, environment or arguments (only a clock and random bytes).
    let host = Host {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
        ledger: Vec::new(),
        key: SigningKey::from_bytes(&[42; 32]),
    };
    let mut store = Store::new(&engine, host);
    store.set_fuel(2_000_000_000)?;
    let lexecon = pre.instantiate(&mut store)?;
    let gov = lexecon.lexecon_governance_engine().governor();

    let node = NodeConfig {
        node_id: "embed-example".into(),
        default_token_ttl: 300,
        max_token_ttl: 3600,
    };
    let this = gov
        .call_open(&mut store, &node)?
        .map_err(|e| wasmtime::format_err!("open: {e:?}"))?;
    let loaded = gov
        .call_load_policy(&mut store, this, POLICY)?
        .map_err(|e| wasmtime::format_err!("{e:?}"))?;
    println!(
        "policy `{}` loaded: {}",
        loaded.policy.name, loaded.policy.policy_hash
    );

    for tool in ["web_search", "shell"] {
        store.set_fuel(200_000_000)?;
        let d = gov
            .call_decide(&mut store, this, &request(tool))?
            .map_err(|e| wasmtime::format_err!("{e:?}"))?;
        println!(
            "{tool}: {:?} ({}), ledger entry {}",
            d.decision, d.reason, d.ledger_index
        );
        if let Some(token) = d.capability_token {
            let claims = gov
                .call_verify_token(&mut store, this, &token.token, Some(tool), None)?
                .map_err(|e| wasmtime::format_err!("{e:?}"))?;
            println!(
                "  token {} verifies, expires at {}",
                claims.token_id, claims.expires_at
            );
        }
    }

    let report = gov
        .call_verify_ledger(&mut store, this)?
        .map_err(|e| wasmtime::format_err!("{e:?}"))?;
    println!(
        "ledger: {} entries, valid: {}, head {}",
        report.entries, report.valid, report.head_hash
    );
    if !report.valid || store.data().ledger.len() != 3 {
        wasmtime::bail!("unexpected ledger: {report:?}");
    }
    Ok(())
}
