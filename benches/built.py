"""Where the benchmarks find the airlock they measure: --airlock PATH, else
the release build in cargo's target directory (asked of `cargo metadata`,
so CARGO_TARGET_DIR and .cargo/config.toml are honoured), else PATH. The
runner must sit beside the binary (or be named by AIRLOCK_RUNNER); a
missing piece is named, not found out later as an exit status."""
import functools
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@functools.lru_cache(maxsize=None)
def target_directory():
    """cargo's target directory for this workspace, or None without cargo."""
    try:
        out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
        return json.loads(out)["target_directory"]
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError):
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        return os.path.join(ROOT, target) if not os.path.isabs(target) else target


def check_runner(airlock, script):
    """The runner airlock will find: its static copy or the glibc one beside
    it (airlock prefers the static one), else one on PATH."""
    here = os.path.dirname(airlock)
    runner = os.path.join(here, "airlock-runner")
    static = os.path.join(here, "airlock-runner-static")
    if (os.environ.get("AIRLOCK_RUNNER") or os.path.exists(static) or os.path.exists(runner)
            or shutil.which("airlock-runner")):
        return
    sys.exit(f"benches/{script}: {airlock} is there but {runner} is not: "
             "build the workspace (cargo build --release --workspace) or set AIRLOCK_RUNNER")


def find_airlock(given, script):
    if given:
        if not os.access(given, os.X_OK):
            sys.exit(f"benches/{script}: --airlock {given}: not an executable file")
        check_runner(os.path.abspath(given), script)
        return given
    target = target_directory()
    built = os.path.join(target, "release", "airlock")
    if os.path.exists(built):
        check_runner(built, script)
        return built
    found = shutil.which("airlock")
    if not found:
        sys.exit(f"benches/{script}: no {built} and no airlock on PATH: "
                 "build first (cargo build --release --workspace) or pass --airlock PATH")
    print(f"benches/{script}: no {built}; measuring {found} from PATH", file=sys.stderr)
    check_runner(found, script)
    return found


def find_built(name, script, given=None, profile="release", where=()):
    """A binary of the workspace's build (`given` if set), with the runner
    beside it; exits naming what is missing."""
    path = given or os.path.join(target_directory(), profile, *where, name)
    if not os.access(path, os.X_OK):
        sys.exit(f"benches/{script}: no {path}: build first "
                 "(cargo build --release --workspace --bins --examples)")
    path = os.path.abspath(path)
    if not where:
        check_runner(path, script)
    return path
