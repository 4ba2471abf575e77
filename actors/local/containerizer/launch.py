"""The helper every container starts through (Mesos's ``mesos-containerizer launch``).

Run by the agent as ``python -I launch.py SPEC_JSON`` (standard library only, so it starts
fast and needs no PYTHONPATH), with the container's environment, working folder and
stdout/stderr already set. In order it:

1. joins the container's cgroups (each ``cgroup.procs`` in ``procs``) before anything runs;
2. without namespaces, execs the command: nothing else stays in between (unless the status
   must be recorded: then it forks the command and waits);
3. otherwise enters a new mount namespace (and pid namespace when ``pid_ns``) and forks the
   namespace's init, which makes its mounts private, bind-mounts the volumes, pivots into
   ``rootfs`` when an image is used, mounts a fresh /proc, then forks the command in its own
   process group and forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to it. When the command exits the
   init exits too, which ends every process left in the namespace, as Mesos destroys a
   container whose executor exited.

The exit status is passed up as-is: a command killed by a signal makes this helper die of the
same signal, so the agent's wait status is the command's. With ``status_file`` (containers of
checkpointing frameworks) the status is also written there, for an agent that restarted and so
is no longer this helper's parent. ``--probe`` checks that the
namespaces can be made here and exits 0, or prints why not and exits 1.
"""

import contextlib
import ctypes
import json
import os
import platform
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 2
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine(), 155)
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)

libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def mount(source, target, fstype, flags):
    check(libc.mount(source.encode() if source else None, target.encode(),
                     fstype.encode() if fstype else None, flags, None),
          f"mount {source} on {target}")


def join_cgroups(procs, pid):
    for path in procs:
        with open(path, "w") as handle:
            handle.write(str(pid))


def setup_filesystem(spec):
    """Inside the new mount namespace: volumes, rootfs, /proc."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    rootfs = spec.get("rootfs")
    prefix = rootfs or ""
    if rootfs:
        mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    for source, target in spec.get("mounts", []):
        where = prefix + target
        os.makedirs(where, exist_ok=True)
        mount(source, where, None, MS_BIND | MS_REC)
    if rootfs:
        os.makedirs(rootfs + "/dev", exist_ok=True)
        mount("/dev", rootfs + "/dev", None, MS_BIND | MS_REC)
        os.makedirs(rootfs + "/proc", exist_ok=True)
        os.chdir(rootfs)
        check(libc.syscall(PIVOT_ROOT, b".", b"."), "pivot_root")
        check(libc.umount2(b".", MNT_DETACH), "umount the host root")
        os.chdir("/")
    if spec.get("pid_ns") or rootfs:
        mount("proc", "/proc", "proc", 0)


def run_init(spec, report_fd):
    """The namespace's init: set up, fork the command, forward signals, report its status."""
    try:
        setup_filesystem(spec)
    except OSError as exc:
        sys.stderr.write(f"Failed to prepare the container: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(1)
    child = os.fork()
    if child == 0:
        os.close(report_fd)
        os.setpgid(0, 0)
        exec_command(spec)

    def forward(signum, _frame):
        with contextlib.suppress(OSError):
            os.killpg(child, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            os.write(report_fd, str(status).encode())
            os._exit(0)


def exec_command(spec):
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    argv = spec["argv"]
    try:
        os.chdir(spec.get("cwd") or "/")
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"Failed to execute {argv[0]!r}: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(127)


def exit_like(status):
    """Leave with the same wait status as ``status`` (re-raising a fatal signal)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def record(spec, status):
    """Leave the wait status where a restarted agent finds it (``status_file``)."""
    path = spec.get("status_file")
    if path:
        with open(path + ".tmp", "w") as handle:
            handle.write(str(status))
        os.replace(path + ".tmp", path)


def run(spec):
    namespaces = spec.get("pid_ns") or spec.get("mount_ns")
    if not namespaces and not spec.get("status_file"):
        join_cgroups(spec.get("procs", []), os.getpid())
        exec_command(spec)
    read_fd, write_fd = os.pipe()
    # The init joins the cgroups before it does anything; this helper stays outside them, so
    # its memory is not charged to the container (the init's pages, shared with it until
    # written, are not either).
    go_read, go_write = os.pipe()
    flags = CLONE_NEWNS | (CLONE_NEWPID if spec.get("pid_ns") else 0)
    try:
        if namespaces:
            check(libc.unshare(flags), "unshare")
    except OSError as exc:
        sys.stderr.write(f"Failed to enter new namespaces: {exc.strerror}\n")
        os._exit(1)
    init = os.fork()
    if init == 0:
        os.close(read_fd)
        os.close(go_write)
        if os.read(go_read, 1) != b"1":
            os._exit(1)
        os.close(go_read)
        if not namespaces:
            os.close(write_fd)
            exec_command(spec)  # no init: this child is the command, its status the status
        run_init(spec, write_fd)
    os.close(write_fd)
    os.close(go_read)
    try:
        join_cgroups(spec.get("procs", []), init)
    except OSError as exc:
        sys.stderr.write(f"Failed to join the container's cgroups: {exc.strerror}\n")
        os.kill(init, signal.SIGKILL)
        os._exit(1)
    os.write(go_write, b"1")
    os.close(go_write)

    def forward(signum, _frame):
        with contextlib.suppress(OSError):
            os.kill(init, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    _pid, init_status = os.waitpid(init, 0)
    report = b""
    while True:
        chunk = os.read(read_fd, 64)
        if not chunk:
            break
        report += chunk
    status = int(report) if report else init_status
    record(spec, status)
    exit_like(status)


def probe(kinds):
    """Exit 0 when the namespaces (``pid``, ``mount``) can be entered and /proc mounted."""
    flags = CLONE_NEWNS | (CLONE_NEWPID if "pid" in kinds else 0)
    try:
        check(libc.unshare(flags), "unshare")
        child = os.fork()
        if child == 0:
            try:
                mount(None, "/", None, MS_REC | MS_PRIVATE)
                if "pid" in kinds:
                    mount("proc", "/proc", "proc", 0)
                    if os.getpid() != 1:
                        os._exit(3)
            except OSError:
                os._exit(2)
            os._exit(0)
        _pid, status = os.waitpid(child, 0)
    except OSError as exc:
        print(exc.strerror)
        return 1
    if status != 0:
        print("cannot mount /proc in a new mount namespace")
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        sys.exit(probe(sys.argv[2].split(",")))
    run(json.loads(sys.argv[1]))
