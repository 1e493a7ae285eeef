"""One replica of the test consumer beta as its own process (so a test can kill it outright):
`python pipeline_replica.py PORT`, settings from the GOVSHARE_* environment."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from conftest import beta_spec
from govshare_common.service import create_service_app
from govshare_common.settings import Settings

if __name__ == "__main__":
    app = create_service_app(beta_spec(), Settings())
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
