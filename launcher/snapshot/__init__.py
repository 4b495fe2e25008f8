"""Code snapshots: jobs run the code they were submitted with.

A sweep can wait hours in the queue and a requeued job restarts days later;
without a snapshot each would import whatever the working tree holds when it
starts. `launch` copies what the jobs import from the project, once per
launch, into `<sweep>/code/`:

    code/snapshot.json     where the copy came from, what it holds, its code digest
    code/recipe/           the recipe's src/, its conf/ (or configs/) and top-level *.py
    code/lib/<package>/    local packages the recipe imports (an editable espnet3, ...)

Jobs compose their config from `code/recipe/conf` (Hydra is pointed there) and
import the recipe's `src` and the local packages from the copy; data, exp and
every other path of the recipe stay where they are. Installed packages (in
site-packages) and the launcher itself are not copied.

`files` says which files make the code and hashes them (the digest tells a
run whether it is resumed by the code that made its checkpoints); `take`
writes the copy; `use` is the job's side.
"""
