/**
 * Running a command in a private network and mount namespace (`unshare -n -m`) where
 * auth.openai.com and api.openai.com resolve to 127.0.0.1 through a bind-mounted /etc/hosts:
 * the proxy's fixed OpenAI URLs then reach fakes on 127.0.0.1:443 and nothing can leave the
 * machine. Needs root (or CAP_SYS_ADMIN) and util-linux `unshare`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const OPENAI_HOSTS = "127.0.0.1 localhost auth.openai.com api.openai.com\n::1 localhost\n";

/** Brings loopback up (a new network namespace may start with it down; gVisor brings it up itself). */
const LOOPBACK_UP = "ip link set lo up 2>/dev/null; [ $(( $(cat /sys/class/net/lo/flags) & 1 )) -eq 1 ]";

/**
 * Whether `unshare -n -m`, loopback and a bind mount work here (call once): root or
 * CAP_SYS_ADMIN, util-linux `unshare`, and `ip` where loopback starts down.
 */
export function privateNetworkAvailable(): boolean {
  if (process.platform !== "linux") return false;
  try {
    const check = `${LOOPBACK_UP} && mount --bind /etc/hosts /etc/hosts`;
    const r = Bun.spawnSync(["unshare", "-n", "-m", "--", "sh", "-c", check], { stdout: "ignore", stderr: "ignore" });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}

/**
 * Spawn `cmd` inside a fresh network + mount namespace with loopback up and /etc/hosts
 * replaced by {@link OPENAI_HOSTS}. The temp hosts file is removed when the child exits.
 */
export function spawnInPrivateNetwork(cmd: string[], env: Record<string, string | undefined>) {
  const dir = mkdtempSync(join(tmpdir(), "oidc-netns-"));
  const hosts = join(dir, "hosts");
  writeFileSync(hosts, OPENAI_HOSTS);
  const script = `${LOOPBACK_UP} && mount --bind "$0" /etc/hosts && exec "$@"`;
  const proc = Bun.spawn(["unshare", "-n", "-m", "--", "sh", "-c", script, hosts, ...cmd], {
    stdout: "pipe",
    stderr: "pipe",
    env,
  });
  void proc.exited.finally(() => rmSync(dir, { recursive: true, force: true }));
  return proc;
}
