//! Create a sandbox through airlockd, run a command in it, stop and
//! delete it.
//!
//! ```text
//! airlockd --listen /tmp/airlockd.sock --state-root /tmp/airlockd-state --group '' &
//! AIRLOCK_HOST=unix:///tmp/airlockd.sock cargo run -p airlock-client --example quickstart
//! ```

use airlock_client::{proto, Client, ClientError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let host = std::env::var("AIRLOCK_HOST")
        .unwrap_or_else(|_| format!("unix://{}", airlock_client::DEFAULT_SOCKET));
    let mut c = Client::connect(&host).await?;
    let v = c.raw().version(proto::Empty {}).await?.into_inner();
    println!("airlockd {} ({})", v.version, v.api);

    let made = c
        .create(proto::CreateRequest {
            name: "quickstart".into(),
            args: vec!["sleep".into(), "60".into()],
            labels: [("app".to_string(), "demo".to_string())].into(),
            start: true,
            ..Default::default()
        })
        .await?;
    for f in &made.findings {
        println!("finding {}: {}", f.code, f.message);
    }
    let id = made.sandbox.unwrap_or_default().id;
    println!("started {}", &id[..12]);

    let ran = c
        .exec_output(&id, &["sh", "-c", "echo pid $$ in $(hostname)"])
        .await?;
    print!("{}", String::from_utf8_lossy(&ran.stdout));

    let stats = c.stats(&id).await?;
    if stats.cgroup {
        println!("memory {} bytes, {} pids", stats.memory_bytes, stats.pids);
    } else {
        println!("no cgroup, so nothing measured (the daemon's config sets no limit)");
    }

    let stopped = c.stop(&id, Some(2)).await?;
    println!("exit {:?}", stopped.exit.map(|e| e.code));
    c.delete(&id, false).await?;
    Ok(())
}
