"""``python -m rlrt`` / ``accelerate launch -m rlrt``."""

from .cli import main

raise SystemExit(main())
