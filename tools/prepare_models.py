"""Set-up step: make sure both offline models exist (see helpers.models)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # set-up never needs the hub

from helpers.models import prepare_models  # noqa: E402

if __name__ == "__main__":
    prepare_models()
