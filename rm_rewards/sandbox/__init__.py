"""The sandbox for untrusted Python (model-written code), in three modules, one role each:

- `rm_rewards.sandbox.api`: what callers use: `run_python`, `run_tests`, `run_many`,
  `arun_many`, `run_job`, `sandbox_isolation`, and the types they take and return
  (`SandboxLimits`, `SandboxJob`, `SandboxResult`);
- `rm_rewards.sandbox.supervisor`: the parent side of a run: work dir, per-run uid, the
  process tree's session, wall clock, output capture, killing what is left, sweeping leftovers,
  classifying the outcome; its docstring says what each defence is for;
- `rm_rewards/sandbox/bootstrap.py`: the child side, started by path as a script
  (`python -I -S bootstrap.py`), standard library only: namespaces, mounts, resource limits,
  the uid drop, the reaper and watchdog, then the program.

Import from the module that holds a name; this package re-exports nothing.
"""
