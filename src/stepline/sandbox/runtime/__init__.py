"""The sandbox's side of the pipe: the fork server and what each job's process does.

Everything here runs inside the sandbox, under the interpreter alone: standard library
only, and only relative imports, because the package is mounted into the sandbox under
another name than `stepline.sandbox.runtime` (the engine side imports `protocol` alone).
"""
