#!/usr/bin/env python3
"""Writes Tests/Fixtures/MANIFEST.json: every fixture file with its SHA-256, size, and the script
and seed that produce it. The test suite recomputes the hashes, so a fixture that was edited by
hand or regenerated without updating the manifest fails a test."""
import hashlib
import importlib.metadata
import json
import os

import gguf

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures")
GENERATORS = {
    "gguf/": ("tools/make_gguf_fixtures.py", 20261123),
    "models/": ("tools/make_tiny_models.py", 7),
    "forward/": ("tools/make_forward_fixtures.py", 1000),
    "text/": ("tools/make_text_fixtures.py + tools/make_chat_fixtures.py", 0),
}


def main():
    files = []
    for top in sorted(GENERATORS):
        script, seed = GENERATORS[top]
        for name in sorted(os.listdir(os.path.join(ROOT, top))):
            path = os.path.join(ROOT, top, name)
            with open(path, "rb") as fp:
                digest = hashlib.sha256(fp.read()).hexdigest()
            files.append({"path": top + name, "bytes": os.path.getsize(path), "sha256": digest,
                          "generator": script, "seed": seed})
    manifest = {"schema": 1, "gguf_python_package": importlib.metadata.version("gguf"), "files": files}
    with open(os.path.join(ROOT, "MANIFEST.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)
        fp.write("\n")
    print(f"{len(files)} files")


if __name__ == "__main__":
    main()
