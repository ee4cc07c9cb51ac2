import assert from "node:assert/strict";
import { escapeHtml, Html, html } from "./_html.ts";

Deno.test("escapeHtml escapes the five markup characters and control characters", () => {
  assert.equal(
    escapeHtml(`<a href="x" title='y'>&amp;</a>`),
    "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;",
  );
  assert.equal(escapeHtml("a\u0000b\u001bc\td\ne\u007f"), "a\ufffdb\ufffdc\td\ne\ufffd");
  assert.equal(escapeHtml("plain text 1.2.3.4:80"), "plain text 1.2.3.4:80");
});

Deno.test("html escapes values, keeps Html, joins arrays and drops undefined, null and false", () => {
  const name = `"><script>alert(1)</script>`;
  const inner = html`<b>${name}</b>`;
  const out = html`<p title="${name}">${inner}${[
    1,
    "<i>",
    html`<i>ok</i>`,
  ]}${undefined}${null}${false}${0}</p>`;
  assert.ok(out instanceof Html);
  assert.equal(
    out.value,
    '<p title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">' +
      "<b>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</b>1&lt;i&gt;<i>ok</i>0</p>",
  );
  assert.equal(String(out), out.value);
});
