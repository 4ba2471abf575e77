"""The agent's containerizer: Mesos's "mesos" containerizer for the emulator's agents.

What Mesos runs with ``--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux,
disk/du`` and ``--image_providers=docker``, done for real on a Linux host with cgroup v1:

- :mod:`.isolation`: the pure part (flags, limits from resources, limitation messages).
- :mod:`.cgroups`: cgroup v1 groups under the agent's ``--cgroups_root`` (create, limit,
  account, destroy).
- :mod:`.launch`: the helper every container starts through (joins the cgroups, enters new
  pid and mount namespaces, pivots into an image's rootfs, runs as the namespace's init).
- :mod:`.images`: the local docker registry (``docker save`` tarballs) and the rootfs cache.
- :mod:`.containers`: :class:`~.containers.Containerizer`, which ties them together for an
  agent (launch, wait, update, kill, statistics, limitation monitor, cleanup).
- :mod:`.operator_api`: the agent's v1 operator API calls for containers.
"""
