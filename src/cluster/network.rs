//! Raft RPC clients. A one-node cluster never calls a peer; a node that is told about peers
//! it cannot reach reports them unreachable, so openraft backs off instead of failing.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use raftmq_raft::{Member, NodeId, TypeConfig};

#[derive(Clone, Default)]
pub struct SingleNodeNetwork;

pub struct NoPeer {
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for SingleNodeNetwork {
    type Network = NoPeer;

    async fn new_client(&mut self, target: NodeId, _node: &Member) -> NoPeer {
        NoPeer { target }
    }
}

impl NoPeer {
    fn unreachable(&self) -> Unreachable {
        Unreachable::new(&std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!(
                "node {} is not reachable from a single-node deployment",
                self.target
            ),
        ))
    }
}

impl RaftNetwork<TypeConfig> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }
}
