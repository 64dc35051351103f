//! `airlock image ls|rm|prune`: manage the layer store.

use crate::run::{fail, refuse};
use airlock::image::Store;
use airlock::Context;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Manage the image layer store.
#[derive(Args)]
pub struct ImageArgs {
    /// The store (default /var/lib/airlock as root, ~/.local/share/airlock
    /// otherwise; or $AIRLOCK_STORE).
    #[arg(long, value_name = "DIR", global = true)]
    store: Option<String>,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List the images the store has run, with their layers' size.
    Ls,
    /// Forget images by name or id prefix (their layers go with `prune`).
    Rm { what: Vec<String> },
    /// Remove layers no image uses, and leftovers of interrupted unpacks.
    Prune,
}

pub fn main(a: ImageArgs, ctx: &Context) -> ExitCode {
    let root = a.store.map_or_else(|| ctx.store.clone(), Into::into);
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => return refuse(format!("image store: {e}")),
    };
    match a.command {
        ImageCommand::Ls => {
            println!(
                "{:<14} {:<30} {:>6} {:>10}  SOURCE",
                "ID", "NAME", "LAYERS", "SIZE"
            );
            for r in store.images() {
                let size: u64 = r.layers.iter().map(|l| store.layer_size(l)).sum();
                let id = r.id.trim_start_matches("sha256:");
                println!(
                    "{:<14} {:<30} {:>6} {:>9}K  {}",
                    &id[..12.min(id.len())],
                    r.name,
                    r.layers.len(),
                    size / 1024,
                    r.source
                );
            }
            ExitCode::SUCCESS
        }
        ImageCommand::Rm { what } => {
            let mut code = ExitCode::SUCCESS;
            for w in what {
                match store.remove(&w) {
                    Ok(0) => {
                        eprintln!("airlock: error: no image {w:?} in the store");
                        code = ExitCode::from(1);
                    }
                    Ok(n) => println!("removed {n} image(s) matching {w}"),
                    Err(e) => code = fail(e.into()),
                }
            }
            code
        }
        ImageCommand::Prune => match store.prune() {
            Ok(n) => {
                println!("pruned {n} layer(s)");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.into()),
        },
    }
}
