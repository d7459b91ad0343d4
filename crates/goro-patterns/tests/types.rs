//! Every public type can cross goroutines (`Send`), and the shared ones
//! can be used from several at once (`Sync`).

use goro_patterns::actor::{ActorHandle, Addr, AskError, Builder, Ctx, Exit, Reply, RestartPolicy};
use goro_patterns::pipeline::{Error, Pipeline, PipelineStats, Running, StageStats};
use goro_patterns::singleflight::Group;
use goro_patterns::{
    JobError, JobHandle, Limiter, Permit, Pool, PoolBuilder, PoolStats, RateLimiter,
};

fn send<T: Send>() {}
fn send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Pool>();
    send_sync::<PoolBuilder>();
    send_sync::<PoolStats>();
    send_sync::<JobError>();
    send_sync::<JobHandle<String>>();
    send_sync::<Limiter>();
    send_sync::<Permit>();
    send_sync::<RateLimiter>();
    send_sync::<Group<String, Vec<u8>>>();
    send_sync::<Addr<String>>();
    send_sync::<Reply<u64>>();
    send_sync::<ActorHandle>();
    send_sync::<Builder>();
    send_sync::<Exit>();
    send_sync::<AskError>();
    send_sync::<RestartPolicy>();
    send_sync::<Ctx>();
    send_sync::<PipelineStats>();
    send_sync::<StageStats>();
    send_sync::<Running<String>>();
    send_sync::<Error<String>>();
    send::<Pipeline<u64, String>>();
}
