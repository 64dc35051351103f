//! Sandboxes per second through airlockd: `CLIENTS` connections, each
//! creating, starting, waiting for and deleting `/bin/true` sandboxes
//! until `COUNT` have run; prints one JSON line. `benches/daemon.py`
//! starts the daemon, runs this, and compares with bubblewrap.
//!
//! ```text
//! throughput SOCKET [COUNT] [CLIENTS]
//! ```

use airlock_client::{proto, Client};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let socket = args
        .next()
        .ok_or("usage: throughput SOCKET [COUNT] [CLIENTS]")?;
    let count: usize = args.next().map_or(Ok(200), |s| s.parse())?;
    let clients: usize = args.next().map_or(Ok(16), |s| s.parse())?;
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Client::connect_path(socket.as_ref()).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut c in conns {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < count {
                let made = c
                    .create(proto::CreateRequest {
                        args: vec!["/bin/true".into()],
                        start: true,
                        ..Default::default()
                    })
                    .await?;
                let id = made.sandbox.unwrap_or_default().id;
                let ended = c.wait(&id).await?;
                if ended.exit.as_ref().map(|e| e.code) != Some(0) {
                    return Err(format!("sandbox {id} did not exit 0: {ended:?}").into());
                }
                c.delete(&id, false).await?;
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await?.map_err(|e| e.to_string())?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"sandboxes\": {count}, \"clients\": {clients}, \"seconds\": {secs:.3}, \"per_second\": {:.2}}}",
        count as f64 / secs
    );
    Ok(())
}
