#!/usr/bin/env python3
"""Copies make_models.py's output into committed test fixtures, without the
full logits (the tests compare next-token log-probabilities only).

    python3 tools/hf_models/slim_fixtures.py SRC_DIR internal/hfcheck/testdata

Standard library only.
"""
import json
import os
import shutil
import sys

src, dst = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    folder = os.path.join(src, name)
    if not os.path.isfile(os.path.join(folder, "reference.json")):
        continue
    out = os.path.join(dst, name)
    os.makedirs(out, exist_ok=True)
    for f in sorted(os.listdir(folder)):
        if f == "reference.json":
            with open(os.path.join(folder, f)) as fh:
                ref = json.load(fh)
            for s in ref["sequences"]:
                s.pop("logits", None)
            with open(os.path.join(out, f), "w") as fh:
                json.dump(ref, fh, indent=1)
                fh.write("\n")
        else:
            shutil.copyfile(os.path.join(folder, f), os.path.join(out, f))
    print(name, "->", out)
