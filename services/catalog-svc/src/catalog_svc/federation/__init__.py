"""Federation of catalogs between platforms (issue 16): peers, the signed change feed a parent pulls from its
child, and the child's resources mirrored in the parent's catalog and search with their origin.

Read top-down: `peers` (the platform office's register and the operations view) → `feed` (what this platform
serves its parent) and `pull` / `mirror` (what it takes from its children) → `guard` (the signature, the peer
and the nonce of every incoming peer call) → `store` (SQL). The signing rule is `govshare_common.message_signatures`.
"""
