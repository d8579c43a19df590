"""Maps the repo's top-level folders into the `townsquare` import namespace.

`platform/` at the repo root must never be importable as `platform` (it would shadow the
standard library), so each top-level folder becomes a sub-package of `townsquare`:
`platform/` -> `townsquare.platform`, `migrations/` -> `townsquare.migrations`, ...
The folders themselves carry no `__init__.py`; their sub-packages do.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {
    "platform": "townsquare.platform",
    "migrations": "townsquare.migrations",
    "agents": "townsquare.agents",
    "worker": "townsquare.worker",
    "webui": "townsquare.webui",
    "bundles": "townsquare.bundles",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, name in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"townsquare.migrations": ["*.ini", "*.mako"], "townsquare.platform": ["*.md"],
                  "townsquare.agents.society": ["societies/*.yaml"],
                  "townsquare.agents.scenario": ["scenarios/*.yaml"],
                  "townsquare.bundles.offline": ["install.sh"],
                  # the web UI's pages and every asset it serves (no CDN)
                  "townsquare.webui": ["templates/*.html", "templates/*/*.html", "static/*/*", "static/*/*/*", "i18n/*.json"]},
)
