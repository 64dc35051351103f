//! Create a sandbox through airlockd, run a command in it, stop and
//! delete it.
//!
//! ```text
//! cargo build -p airlockd -p airlock-client --examples
//! sudo target/debug/airlockd --listen /tmp/airlockd.sock --state-root /tmp/airlockd-state --group '' &
//! sudo AIRLOCK_HOST=unix:///tmp/airlockd.sock target/debug/examples/quickstart
//! ```
//!
//! (`--group ''` lets only root call; `--group GROUP` lets that group's
//! members call as themselves, without sudo.)

use airlock_client::{proto, Client, ClientError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let host = std::env::var("AIRLOCK_HOST")
        .unwrap_or_else(|_| format!("unix://{}", airlock_client::DEFAULT_SOCKET));
    let mut c = Client::connect(&host).await?;
    let v = c.version().await?;
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
    println!("started {}", id.get(..12).unwrap_or(&id));

    // Whatever fails from here, the sandbox goes: a second run would
    // find the name taken.
    let used = use_it(&mut c, &id).await;
    c.delete(&id, true).await?;
    used
}

async fn use_it(c: &mut Client, id: &str) -> Result<(), ClientError> {
    let ran = c
        .exec_output(id, &["sh", "-c", "echo pid $$ in $(hostname)"])
        .await?;
    print!("{}", String::from_utf8_lossy(&ran.stdout));

    let stats = c.stats(id).await?;
    if stats.cgroup {
        println!("memory {} bytes, {} pids", stats.memory_bytes, stats.pids);
    } else {
        println!("no cgroup, so nothing measured (the daemon's config sets no limit)");
    }

    let stopped = c.stop(id, Some(2)).await?;
    println!("exit {:?}", stopped.exit.map(|e| e.code));
    Ok(())
}
