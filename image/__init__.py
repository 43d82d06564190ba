"""SD-card images: `bramble image build` turns a Raspberry Pi OS Lite (or Debian arm64)
image into one that boots straight into the cluster.

Layout: settings.py (bramble.toml: what a person may edit after flashing; pure),
disk.py (partition table, FAT via mtools, ext4 via debugfs: no loop mounts, no root),
wheels.py (bramble and its dependencies as aarch64 wheels), build.py (the steps, writing
to a temporary file renamed only when complete), firstboot.py (stdlib-only script the
image carries to /usr/lib/bramble/firstboot), seed.py (the master's join token, run on
the Pi), cli.py (`bramble image ...`).
"""
