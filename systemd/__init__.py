"""bramble's systemd units, installed as package data of `bramble.systemd`.

`bramble image build` reads them with importlib.resources and writes them into an SD-card
image; on other machines copy them to /etc/systemd/system/. Every unit expects bramble in
the venv /opt/bramble/venv (where the first-boot unit puts it) and its state under
/var/lib/bramble. Only one of bramble-master, bramble-node and bramble-up runs on a Pi.
"""
