// Compile MJML files with MJML.js, the reference compiler, at validationLevel "strict": any
// validation error or crash fails. Prints one JSON line per file; exit status 1 if any failed.
// Run by tests/test_mjml_js.py with the mjml package that scripts/system-deps installs here.
"use strict";
const fs = require("fs");
const mjml2html = require("mjml");

async function main(paths) {
  let failed = false;
  for (const path of paths) {
    try {
      const source = fs.readFileSync(path, "utf8");
      const result = await mjml2html(source, { validationLevel: "strict", filePath: path });
      console.log(JSON.stringify({ path, ok: true, errors: result.errors, html: result.html.length }));
    } catch (error) {
      failed = true;
      const errors = (error.errors || []).map((e) => e.formattedMessage || e.message);
      console.log(JSON.stringify({ path, ok: false, message: String(error.message), errors }));
    }
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
