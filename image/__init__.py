"""SD-card images: `bramble image build` turns a Raspberry Pi OS Lite (or Debian arm64)
image into one that boots straight into the cluster.

Layout: settings.py (bramble.toml: what a person may edit after flashing; pure),
overlay.py (everything a card adds to the OS, as one list both writers use: the image's
ext4 and a plain directory tree, which the boot tests use), disk.py (partition table, FAT
via mtools, ext4 via debugfs: no loop mounts, no root), wheels.py (bramble and its
dependencies as wheels for the Pi - or the test machine), build.py (the steps, writing
to a temporary file renamed only when complete), firstboot.py (stdlib-only script the
image carries to /usr/lib/bramble/firstboot), seed.py (the master's join token, run on
the Pi), cli.py (`bramble image ...`).
"""
