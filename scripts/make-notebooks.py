import nbformat as nbf, sys, json
def nb(cells, kernel="sense-ts", display="TypeScript (Sense)", lang="typescript"):
    n = nbf.v4.new_notebook()
    n.metadata = {"kernelspec": {"name": kernel, "display_name": display, "language": lang},
                  "language_info": {"name": lang}}
    out = []
    for kind, src in cells:
        src = src.strip("\n")
        out.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    n.cells = out
    return n

zmq = nb([
("md", """# Workers over ZeroMQ

The Sense example in TypeScript: the master installs ZeroMQ into the project, binds a reply
socket on the project network, launches three workers that each send it a message, and
answers them. Every worker's output shows up here, labelled by worker."""),
("code", "%sense_install zeromq"),
("code", """import * as sense from "sense-tslab";
import * as zmq from "zeromq";

// The master's reply socket, on the project's private address (any free port).
const sock = new zmq.Reply();
await sock.bind(`tcp://${sense.networkInfo().projectIp}:*`);
const address = sock.lastEndpoint!;
console.log("master listening on", address);"""),
("md", "The cell body is the workers' startup code; `$address` comes from the cell above."),
("code", """%%sense_worker -n 3 --size small --env SERVER=$address
import * as zmq from "zeromq";

const sock = new zmq.Request();
console.log("Connecting to master...");
sock.connect(process.env.SERVER!);
await sock.send("Sense is so easy!");
const [reply] = await sock.receive();
console.log("Received reply:", reply.toString());"""),
("code", """// Listen for the workers' messages and answer each.
for (let i = 0; i < 3; i++) {
  const [message] = await sock.receive();
  console.log("Received request:", message.toString());
  await sock.send("I agree.");
}"""),
("code", "%sense_await --completion --timeout 120"),
("code", "%sense_workers"),
("code", """%sense_stop"""),
("code", """sock.close();
(await sense.listWorkers()).length"""),
])

gs = nb([
("md", """# Getting started with Sense for TypeScript notebooks

Install a package for the whole project, look at the network, call the Jupyter REST API with
the project's credentials, and launch, list and stop workers with function calls and magics."""),
("code", "%lsmagic"),
("code", "%sense_install is-number"),
("code", """import isNumber from "is-number";
console.log(isNumber(42), isNumber("nope"));"""),
("code", """import * as sense from "sense-tslab";
sense.display(sense.networkInfo());"""),
("code", "%sense_auth"),
("code", """// An authenticated REST call with the project's credentials.
const auth = sense.getAuth();
const res = await fetch(auth.baseUrl + "api/status", { headers: auth.headers });
console.log("REST status:", res.status);"""),
("code", """const workers = await sense.launchWorkers(2, {
  code: 'console.log("hello from", process.env.SENSE_WORKER_NAME, "of", process.env.SENSE_MASTER_ID);',
});
const done = await sense.awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 120 });
console.log("finished:", done.workers.length, "failed:", done.failures.length);"""),
("md", "A cell's last expression renders as a table when it is a worker list, a worker, network info or credentials."),
("code", """await sense.listWorkers()"""),
("code", """%%sense_worker -n 1 --env GREETING=hi
console.log(process.env.GREETING, "from a magic-launched worker");"""),
("code", "%sense_await --completion --timeout 120"),
("code", "%sense_workers"),
("code", """const stopped = await sense.stopWorkers();
console.log("stopped", stopped.length, "workers");"""),
])

py = nb([
("md", """# Workers in another engine: Python

A TypeScript master can launch workers of any installed kernel. Here: Python workers, which get
the same `SENSE_*` environment and whose output arrives here too."""),
("code", """import * as sense from "sense-tslab";
const workers = await sense.launchWorkers({
  n: 2,
  engine: "python3",
  env: { TASK: "squares" },
  code: [
    "import os",
    "n = int(os.environ['SENSE_WORKER_NAME'].lstrip('w'))",
    "print(os.environ['TASK'], 'from', os.environ['SENSE_WORKER_NAME'], '->', n * n)",
  ].join("\\n"),
});
const result = await sense.awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 120 });
console.log("completed:", result.workers.length, "failures:", result.failures.length);"""),
("code", "%sense_workers"),
("code", """%%sense_worker -n 1 --engine sense-ipython-engine
import sys
print("python", sys.version_info.major, "worker says hi")"""),
("code", "%sense_await --completion --timeout 120"),
("code", "%sense_stop"),
])

pmap = nb([
("md", """# Parallel map: Monte Carlo π on four workers

Give workers work: run a cell on all of them with `%%sense_px`, move values with `push`/`pull`,
and `map` a function over items. Each worker computes its share; results come back in order."""),
("code", """import * as sense from "sense-tslab";
const workers = await sense.launchWorkers(4, { engine: "sense-fast" });
await sense.awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 120 });"""),
("md", "The cell body runs on every worker; each one's value shows as `Out[w1]: ...`."),
("code", """%%sense_px
const me = process.env.SENSE_WORKER_NAME;
console.log("ready:", me);
me"""),
("md", "`push` sets globals on the workers; the function `map` ships reads it there."),
("code", "await sense.push({ samplesPerTask: 200_000 });"),
("code", """// Runs on the workers: only its source travels, so it reads the pushed global, not a closure.
const hits = await sense.map((task: number) => {
  const n: number = (globalThis as any).samplesPerTask;
  let inside = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.random(), y = Math.random();
    if (x * x + y * y < 1) inside++;
  }
  return { task, inside };
}, Array.from({ length: 64 }, (_, i) => i));
const total = hits.reduce((sum, h) => sum + h.inside, 0);
console.log("tasks in order:", hits.every((h, i) => h.task === i));
console.log("pi ≈", (4 * total / (64 * 200_000)).toFixed(3));"""),
("md", "`execute` returns one result per worker; as a cell's last expression it renders as a table."),
("code", """await sense.execute("samplesPerTask / 1000")"""),
("code", """const pulled = await sense.pull("samplesPerTask");
console.log("pulled:", pulled.join(", "));"""),
("code", """const stopped = await sense.stopWorkers();
console.log("stopped", stopped.length, "workers");"""),
])

dn = nb([
("md", """# Deno workers from a Deno notebook

Sense in Deno's own Jupyter kernel: `import * as sense from "sense-tslab"` (from this folder's
`node_modules`), three Deno workers, a parallel map, values moved with `push`/`pull`. Every
worker's output shows up here, labelled by worker."""),
("code", """import * as sense from "sense-tslab";
console.log("runtime:", sense.getRunContext().runtime);
const workers = await sense.launchWorkers(3, {
  engine: "deno",
  // TypeScript startup code: the worker's environment is loaded before it runs.
  code: 'const me: string = Deno.env.get("SENSE_WORKER_NAME")!;\\nconsole.log("ready:", me, "on deno", Deno.version.deno);',
});
await sense.awaitWorkers(workers, { waitForCompletion: true, timeoutSeconds: 120 })"""),
("md", "`push` sets globals on the workers; the function `map` ships reads it there."),
("code", "await sense.push({ samplesPerTask: 100_000 });"),
("code", """// Runs on the workers: only its source travels, so it reads the pushed global, not a closure.
const hits = await sense.map((task: number) => {
  const n: number = (globalThis as any).samplesPerTask;
  let inside = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.random(), y = Math.random();
    if (x * x + y * y < 1) inside++;
  }
  return { task, inside, by: Deno.env.get("SENSE_WORKER_NAME") };
}, Array.from({ length: 24 }, (_, i) => i));
const total = hits.reduce((sum, h) => sum + h.inside, 0);
console.log("tasks in order:", hits.every((h, i) => h.task === i));
console.log("pi ≈", (4 * total / (24 * 100_000)).toFixed(3));"""),
("md", "`execute` returns one result per worker; as a cell's last expression it renders as a table."),
("code", """await sense.execute("samplesPerTask / 1000")"""),
("code", """const pulled = await sense.pull("samplesPerTask");
console.log("pulled:", pulled.join(", "));"""),
("md", "The magics work too, as a tagged template."),
("code", "await sense.magic`%sense_workers`"),
("code", """const stopped = await sense.stopWorkers();
console.log("stopped", stopped.length, "workers");"""),
], kernel="deno", display="Deno", lang="typescript")

for name, n in [("zmq-workers", zmq), ("getting-started", gs), ("python-workers", py), ("parallel-map", pmap), ("deno-workers", dn)]:
    nbf.validate(n)
    nbf.write(n, f"notebooks/{name}.ipynb")
print("ok")
