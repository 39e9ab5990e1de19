"""Claude Code's side of keybroker: its settings files and the helper contracts it runs.

Pure logic, no click: where each settings scope lives and in which order Claude Code reads
them (:mod:`.settings`), the helper commands keybroker writes and recognises (:mod:`.helpers`),
the variables of each deployment (:mod:`.deployments`), the precedence lint behind
``keybroker doctor`` (:mod:`.precedence`) and the texts handed to Claude Code
(:mod:`.render`). The commands in :mod:`keybroker.cli` only parse, call and print.
"""
