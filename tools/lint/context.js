#!/usr/bin/env node
// The build context Dockerfile.jvm gets: the repository's files less those .dockerignore excludes, by
// Docker's own rules (@balena/dockerignore is a port of moby's matcher).
//
//   node context.js              checks the context (below), prints a summary
//   node context.js --list       prints the context's files, one per line (tools/docker/smoke.sh copies them)
//
// Checks: every path a COPY in the build stage takes from the context is there; the files the build
// needs are in it (the wrapper, the POM, the sources, the embedded checkpoint); test code, build
// outputs and node_modules are not; and it stays small.
'use strict';
const fs = require('fs');
const path = require('path');
const ignore = require('@balena/dockerignore');

const root = path.resolve(__dirname, '../..');
const dockerfile = path.join(root, 'Dockerfile.jvm');
const ig = ignore().add(fs.readFileSync(path.join(root, '.dockerignore'), 'utf8'));

function walk(dir, out) {
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (rel === '.git') continue;
    if (entry.isDirectory()) walk(rel, out);
    else out.push(rel);
  }
  return out;
}

const files = walk('', []).filter((f) => !ig.ignores(f)).sort();

if (process.argv.includes('--list')) {
  process.stdout.write(files.join('\n') + '\n');
  process.exit(0);
}

const problems = [];
const has = (p) => files.some((f) => f === p || f.startsWith(p.replace(/\/$/, '') + '/'));

// COPY sources of the stages that read the context (no --from).
for (const line of fs.readFileSync(dockerfile, 'utf8').split('\n')) {
  const m = line.match(/^\s*COPY\s+(.*)$/i);
  if (!m || /--from=/.test(m[1])) continue;
  const args = m[1].split(/\s+/).filter((a) => a && !a.startsWith('--'));
  for (const src of args.slice(0, -1)) {
    if (!has(src.replace(/^\.\//, ''))) problems.push(`COPY ${src}: not in the build context`);
  }
}
for (const needed of ['mvnw', 'pom.xml', '.mvn/jdk.sh', '.mvn/jdk-release', '.mvn/wrapper/maven-wrapper.properties',
  'src/main/java/io/jemma/engine/InferenceEngine.java', 'src/main/resources/application.properties',
  'src/test/resources/golden/tiny-31b/model.safetensors', 'src/test/resources/golden/tiny-31b/tokenizer.json',
  'src/test/resources/golden/tiny-31b/config.json']) {
  if (!files.includes(needed)) problems.push(`${needed}: the build needs it, .dockerignore leaves it out`);
}
for (const f of files) {
  if (/(^|\/)(target|node_modules|\.idea)\//.test(f) || f.startsWith('src/test/java/') || f.startsWith('k8s/')
      || f.startsWith('tools/') || /(^|\/)reference\.[a-z]+$/.test(f)) {
    problems.push(`${f}: should not be in the build context`);
  }
}
const bytes = files.reduce((n, f) => n + fs.statSync(path.join(root, f)).size, 0);
if (bytes > 64 << 20) problems.push(`the build context is ${(bytes / 1048576).toFixed(1)} MiB (more than 64 MiB)`);

if (problems.length) {
  console.error(problems.map((p) => `.dockerignore: ${p}`).join('\n'));
  process.exit(1);
}
console.log(`build context: ${files.length} files, ${(bytes / 1048576).toFixed(1)} MiB; COPY sources present`);
