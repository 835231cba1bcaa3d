"""dbus_workload.py: a real extension workload for a clean run: Debian's python3-dbus
(_dbus_bindings), on a private bus of its own.

    python3 dbus_workload.py N

Starts a private dbus-daemon (Debian's dbus-daemon; without the checker's environment, so
only this process is checked), then opens two connections to it. The first exports an object with a method
and emits a signal per call; the second calls the method N times asynchronously and receives
the signals, all dispatched by a GLib main loop. Each message dispatched to Python goes through
_dbus_bindings' DBusPyConnection_ExistingFromDBusConnection, which borrows the connection with
PyWeakref_GetObject and takes a reference at once (correct code). Prints "replies R signals S"
and exits 0 when every reply and signal came.
"""
import os
import subprocess
import sys
import tempfile

import dbus
import dbus.bus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

IFACE = "org.wref.Workload"


class Echo(dbus.service.Object):
    @dbus.service.method(IFACE, in_signature="s", out_signature="s")
    def Echo(self, text):
        self.Said(text)
        return text.upper()

    @dbus.service.signal(IFACE, signature="s")
    def Said(self, text):
        pass


def start_bus(tmpdir):
    """A private session bus in tmpdir: (the daemon's process, its address)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "LD_AUDIT", "WREF_CHECK_OPTIONS", "GLIBC_TUNABLES")}
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1",
                               "--address=unix:tmpdir=" + tmpdir], stdout=subprocess.PIPE, env=env, text=True)
    address = daemon.stdout.readline().strip()
    if not address:
        daemon.kill()
        raise SystemExit("dbus_workload: dbus-daemon printed no address")
    return daemon, address


def main():
    n = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmpdir:
        daemon, address = start_bus(tmpdir)
        try:
            return run(address, n)
        finally:
            daemon.terminate()
            daemon.wait()


def run(address, n):
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    server = dbus.bus.BusConnection(address)
    client = dbus.bus.BusConnection(address)
    Echo(server, "/org/wref/Echo")
    loop = GLib.MainLoop()
    got = {"replies": 0, "signals": 0, "errors": 0}

    def maybe_quit():
        if got["replies"] == n and got["signals"] == n or got["errors"]:
            loop.quit()

    def on_signal(text):
        got["signals"] += 1
        maybe_quit()

    def on_reply(text):
        got["replies"] += 1
        maybe_quit()

    def on_error(e):
        print("error:", e, file=sys.stderr)
        got["errors"] += 1
        maybe_quit()

    client.add_signal_receiver(on_signal, signal_name="Said", dbus_interface=IFACE)
    proxy = client.get_object(server.get_unique_name(), "/org/wref/Echo")
    for i in range(n):
        proxy.Echo("m%d" % i, dbus_interface=IFACE, reply_handler=on_reply, error_handler=on_error)
    GLib.timeout_add_seconds(60, loop.quit)
    loop.run()
    server.close()
    client.close()
    print("replies %d signals %d" % (got["replies"], got["signals"]))
    return 0 if got["replies"] == n and got["signals"] == n and not got["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
