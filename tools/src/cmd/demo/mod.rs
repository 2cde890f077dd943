//! `ferry demo`: the whole Uptane story on 127.0.0.1, as real processes of this binary: an
//! Image repository server and a Director (SQLite), a vehicle whose Primary drives two
//! Secondaries; images of each update domain published, assigned and installed through
//! update cycles, one target per ECU per round; then a target whose depends no ECU meets,
//! refused before installation.
//! Every child is stopped on every exit path (see crate::world::procs).

mod domains;
mod flow;
mod oci;
mod refusal;
mod story;
mod summary;

use crate::error::Result;
use crate::world::workdir::WorkDir;
use crate::world::{procs, World};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use story::Story;

const EXAMPLE: &str = "Examples:
  ferry demo                         # in a fresh temporary directory, removed afterwards
  ferry demo --dir /tmp/ferry-demo   # kept: configs, state, logs/ of every process
  ferry demo --dir /tmp/ferry-demo --keep-running   # then explore; Ctrl-C stops everything
  ferry demo --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s[\"installed_domains\"], len(s[\"refused\"]))'

Starts on 127.0.0.1 (ports chosen by the system): `ferry repo serve`, `ferry director serve`,
and for the vehicle `ferry secondary` twice and `ferry primary check` per cycle. Their logs
go to DIR/logs/ (RUST_LOG sets their level; default info). Exits 0 when every image is
installed and the refused target is refused with Mender's wording; nothing keeps running.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct Args {
    /// Work in DIR (created; kept afterwards for inspection) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print a machine-readable summary on stdout (the story goes to stderr).
    #[arg(long)]
    json: bool,
    /// Keep the Director, the Image repository and the Secondaries running after the story,
    /// to explore them with `ferry admin` and `ferry primary`; Ctrl-C stops them (exit 130).
    #[arg(long, requires = "dir")]
    keep_running: bool,
}

pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    procs::stop_children_on_signal()?;
    let mut work = WorkDir::new(args.dir, "ferry-demo")?;
    let mut story = Story::new(args.json);
    story.line(&format!(
        "Ferry demo: an OEM backend and a vehicle on 127.0.0.1, in {}\n\
         (each process logs to {}/logs/; the directory is removed at the end unless --dir \
         is given or the demo fails)",
        work.path.display(),
        work.path.display()
    ));
    let domains = domains::all()?;
    let mut world = World::new(&work.path, domains::vehicle(&domains))?;
    let result = (|| {
        let files = flow::backend_and_vehicle(&mut world, &mut story, &domains)?;
        let rounds = flow::rounds(&domains);
        let (mut cycles, mut installed) = (0, 0);
        for (i, round) in rounds.iter().enumerate() {
            let title = format!(" (round {} of {})", i + 1, rounds.len());
            flow::assign(&world, &mut story, round, &title)?;
            installed += round.len();
            cycles = flow::update(&world, &mut story, &title, installed, cycles)?;
        }
        flow::uptane_checks(&mut story);
        flow::verify_installed(&world, &mut story, &domains, &files)?;
        let refused = refusal::run(&world, &mut story)?;
        // The final state, as each ECU and the Director say after the refusal.
        let rows = summary::ecu_rows(
            &world.vehicle_status()?,
            &world.director_status()?,
            &domains,
        )?;
        Ok((cycles, rows, refused))
    })();
    let started = world.started();
    let director = world.director_addr;
    if !(args.keep_running && result.is_ok()) {
        // Every child is killed and reaped here, before anything else is printed.
        drop(world);
    }
    story.done();
    let (cycles, rows, refused) = match result {
        Ok(r) => r,
        Err(e) => {
            work.keep = true;
            story.line(&format!(
                "\nThe demo stopped; every process is stopped. Kept {} (logs in logs/).",
                work.path.display()
            ));
            return Err(e);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let installed = summary::installed_domains(&rows);

    story.line(&format!(
        "\nEach ECU at the end (vehicle {}):",
        domains::VIN
    ));
    story.line(&summary::table(&rows).to_string());
    story.line(&format!(
        "\nDone in {seconds:.1} s: {} domain(s) installed ({}), 1 target refused before \
         installation ({}).",
        installed.len(),
        installed.iter().cloned().collect::<Vec<_>>().join(", "),
        refused.target,
    ));
    if args.json {
        let summary = json!({
            "ok": true,
            "vin": domains::VIN,
            "dir": work.path,
            "kept": work.keep,
            "logs": work.path.join("logs"),
            "seconds": seconds,
            "cycles": cycles,
            "ecus": rows,
            "installed_domains": installed,
            "refused": [refused],
            "checks": story.checks,
            "processes": started
                .iter()
                .map(|(name, pid)| json!({"name": name, "pid": pid}))
                .collect::<Vec<_>>(),
        });
        crate::cmd::admin::client::print_json(&summary)?;
    }
    if args.keep_running {
        hold(&story, &work.path, director);
    }
    story.line(&format!(
        "All processes stopped.{}",
        if work.keep {
            format!(" Kept {}.", work.path.display())
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// `--keep-running`: say how to explore, then wait for Ctrl-C (the signal handler stops every
/// child and exits).
fn hold(story: &Story, dir: &std::path::Path, director: Option<std::net::SocketAddr>) -> ! {
    let d = dir.display();
    let url = director.map(|a| a.to_string()).unwrap_or_default();
    story.line(&format!(
        "\nStill running; Ctrl-C stops everything. Try:\n  \
         ferry admin --url http://{url} --token-file {d}/ops.token status {vin}\n  \
         ferry primary --config {d}/primary.toml status",
        vin = domains::VIN
    ));
    loop {
        std::thread::park();
    }
}
