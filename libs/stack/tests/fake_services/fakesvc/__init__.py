"""A stand-in for a govshare service, used only by the stack's tests (see GOVSHARE_STACK_SERVICE_MODULES)."""
