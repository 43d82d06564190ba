"""Map the repository's architecture folders onto the one import package `bramble`.

The folders at the top (master/, node/, image/) are what a newcomer sees first, so they
carry the architecture; installed, they become bramble.master, bramble.node, ...
so nothing generic lands at the top of site-packages.
"""

from setuptools import find_packages, setup

ROOTS = {
    "bramble": "bramble",
    "bramble.master": "master",
    "bramble.node": "node",
    "bramble.image": "image",
    "bramble.systemd": "systemd",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for package, folder in ROOTS.items():
    package_dir[package] = folder
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

# The units travel as package data: `bramble image build` copies them into images.
setup(packages=packages, package_dir=package_dir,
      package_data={"bramble.master": ["py.typed", "web/static/*"],
                    "bramble.systemd": ["*.service"]})
