// The seed's worker: read the payload file procx wrote, add metadata, print the result as JSON.
// procx gives the path in PROCX_PAYLOAD_FILE (with -payload-file), or the payload itself in PROCX_PAYLOAD.
const fs = require("fs");
const os = require("os");

const text = process.env.PROCX_PAYLOAD_FILE
  ? fs.readFileSync(process.env.PROCX_PAYLOAD_FILE, "utf8")
  : process.env.PROCX_PAYLOAD || fs.readFileSync(0, "utf8");
const work = JSON.parse(text);
work.metadata = { processedAt: new Date().toISOString(), processedBy: os.hostname() };
process.stdout.write(JSON.stringify(work) + "\n");
