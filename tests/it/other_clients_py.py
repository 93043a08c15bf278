# What an application built on pygit2 (libgit2) or dulwich does, and what
# it shows its user: the library's exception, as the application gets it.
#   other_clients_py.py LIB ls URL SCRATCH | clone URL DEST | fetch DEST | push DEST
# CLIENT_KEY (an SSH private key), CLIENT_USER and CLIENT_PASS (HTTP) come
# from the environment; dulwich runs GIT_SSH_COMMAND for SSH.
import os
import sys

lib, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
KEY = os.environ.get("CLIENT_KEY", "")
USER = os.environ.get("CLIENT_USER", "")
PASS = os.environ.get("CLIENT_PASS", "")


def shown(error):
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(1)


def pygit2_client():
    import pygit2

    rejected = []

    class Callbacks(pygit2.RemoteCallbacks):
        def credentials(self, url, username, allowed):
            if allowed & pygit2.GIT_CREDENTIAL_SSH_KEY:
                return pygit2.Keypair(username or "git", KEY + ".pub", KEY, "")
            return pygit2.UserPass(USER, PASS)

        def certificate_check(self, certificate, valid, host):
            return True

        def push_update_reference(self, ref, message):
            if message:
                rejected.append(f"{ref}: {message}")

    if action == "ls":
        url, scratch = args
        repo = pygit2.init_repository(scratch, bare=True)
        for ref in repo.remotes.create("origin", url).ls_remotes(callbacks=Callbacks()):
            print(ref["name"])
    elif action == "clone":
        url, dest = args
        pygit2.clone_repository(url, dest, callbacks=Callbacks())
    elif action == "fetch":
        pygit2.Repository(args[0]).remotes["origin"].fetch(callbacks=Callbacks())
    elif action == "push":
        remote = pygit2.Repository(args[0]).remotes["origin"]
        remote.push(["refs/heads/main:refs/heads/main"], callbacks=Callbacks())
        if rejected:
            raise Exception("; ".join(rejected))


def dulwich_client():
    from dulwich import porcelain

    if action == "ls":
        for name in porcelain.ls_remote(args[0]):
            print(name.decode())
    elif action == "clone":
        porcelain.clone(args[0], args[1], errstream=sys.stderr.buffer).close()
    elif action == "fetch":
        porcelain.fetch(args[0], "origin", errstream=sys.stderr.buffer)
    elif action == "push":
        porcelain.push(args[0], "origin", "refs/heads/main", errstream=sys.stderr.buffer)


try:
    {"pygit2": pygit2_client, "dulwich": dulwich_client}[lib]()
except Exception as error:
    shown(error)
