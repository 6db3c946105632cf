# Sourced by the podman scripts: one way to call podman.
# runc and cgroupfs: this machine kind has hybrid cgroups, where podman's
# defaults (crun, systemd) cannot start a container.
lpodman() {
  podman --runtime runc --cgroup-manager=cgroupfs "$@"
}

# Whether podman can run a container here (prints why not on stderr).
podman_works() {
  if ! command -v podman >/dev/null; then
    echo "podman is not installed" >&2
    return 1
  fi
}
