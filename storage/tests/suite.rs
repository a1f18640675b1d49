//! openraft's own storage conformance suite against `LogStore` + `StateMachineStore`, each
//! build in a fresh temporary directory (kept alive by the suite's guard).

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use raftmq_raft::{DropEffects, NodeId, TypeConfig};
use raftmq_storage::{LogStore, StateMachineStore, StoreOptions};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachineStore), openraft::StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            raftmq_storage::open(dir.path(), StoreOptions::default(), Arc::new(DropEffects))
                .await
                .expect("open store");
        Ok((dir, store.log, store.state_machine))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("storage suite");
}
