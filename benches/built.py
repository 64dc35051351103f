"""Where the benchmarks find the airlock they measure: --airlock PATH, else
the release build (in $CARGO_TARGET_DIR or ./target), else PATH."""
import os
import shutil
import sys


def find_airlock(given, script):
    if given:
        return given
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    built = os.path.join(target, "release", "airlock")
    if os.path.exists(built):
        return built
    found = shutil.which("airlock")
    if not found:
        sys.exit(f"benches/{script}: build first (cargo build --release) or pass --airlock PATH")
    return found
