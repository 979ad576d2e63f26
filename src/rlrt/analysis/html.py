"""The self-contained inspector page: data embedded as JSON, rendered by a small script, no network assets."""

from __future__ import annotations

import html
import json
from typing import Any

from ..io import finite_or_none

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;max-width:1100px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px;border-top:1px solid #ddd;padding-top:12px}
.legend span{padding:2px 6px;margin-right:8px;border-radius:3px}
.rollout{margin:12px 0;padding:8px 10px;border:1px solid #e3e3e3;border-radius:6px}
.meta{font-size:12px;color:#555;margin-bottom:6px}
.ok{color:#1a7f37;font-weight:600} .bad{color:#b42318;font-weight:600}
.tokens{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;line-height:1.9;white-space:pre-wrap}
.tok{border-radius:2px;padding:1px 0}
.tok.critical{outline:2px solid #6f42c1;outline-offset:1px;margin-right:8px}
.tok.critical::after{content:"\\2605";color:#6f42c1;font-size:9px;vertical-align:super}
.tok.probe{border-bottom:3px solid #b08800} .tok.probe-top{border-bottom:3px solid #d62728}
.tok.probe-random{border-bottom:3px solid #1f77b4}
pre.summary{font-size:12px;background:#f6f8fa;padding:8px;overflow-x:auto}
table.alts{border-collapse:collapse;font-size:12px;margin-top:6px}
table.alts td,table.alts th{border:1px solid #ddd;padding:2px 6px}
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('rlrt-data').textContent);
const fmt = (x, n=3) => (x === null || x === undefined) ? 'n/a' : Number(x).toFixed(n);
function colour(d){ if(d===null) return 'transparent'; const a=Math.min(Math.abs(d)/3,1)*0.75;
  return d>0 ? `rgba(220,50,47,${a})` : `rgba(38,139,210,${a})`; }
const root = document.getElementById('problems');
data.problems.forEach((problem, p) => {
  const section = document.createElement('section'); section.className='problem'; section.dataset.index=p;
  const h = document.createElement('h2');
  const question = Array.isArray(problem.prompt) ? problem.prompt[problem.prompt.length-1].content : problem.prompt;
  h.textContent = `Problem ${p+1}: ${question}  (gold: ${problem.answer})`; section.appendChild(h);
  problem.rollouts.forEach((r, k) => {
    const box = document.createElement('div'); box.className='rollout'; box.dataset.rollout=k;
    const meta = document.createElement('div'); meta.className='meta';
    const shaping = r.has_teacher ? (r.shaped ? 'reweighted' : 'teacher context, not reweighted (gate or A = 0)')
      : 'no teacher context';
    meta.innerHTML = `<span class="${r.correct?'ok':'bad'}">${r.correct?'correct':'wrong'}</span> &middot; `
      + (r.advantage === undefined ? '' : `A = ${fmt(r.advantage)} &middot; `)
      + (r.note !== undefined ? r.note : shaping);
    box.appendChild(meta);
    const line = document.createElement('div'); line.className='tokens';
    const alts = [], probes = [];
    r.tokens.forEach((t, i) => {
      const span = document.createElement('span'); span.className='tok'+(t.critical?' critical':'');
      span.textContent = t.text.replace(/\\n/g, '\\u21b5\\n');
      span.style.background = colour(t.d);
      span.dataset.d = t.d === null ? '' : String(t.d);
      span.dataset.m = String(t.multiplier);
      span.dataset.kl = t.kl === null ? '' : String(t.kl);
      if (t.probe) { span.classList.add('probe', 'probe-' + t.probe.role); probes.push([i, t]); }
      const probed = t.probe ? `probed (${t.probe.role}): influence resample = ${fmt(t.probe.resample, 2)}, `
        + `reflect = ${fmt(t.probe.reflect, 2)}\\n` : '';
      span.title = probed + `D = ${fmt(t.d)}  multiplier = ${fmt(t.multiplier)}\\n`
        + `log P_S = ${fmt(t.logp_student)}  log P_T = ${fmt(t.logp_teacher)}\\nKL(P_S||P_T) = ${fmt(t.kl)}`;
      line.appendChild(span);
      if (t.critical) alts.push([i, t]);
    });
    box.appendChild(line);
    if (alts.length) {
      const table = document.createElement('table'); table.className='alts';
      table.innerHTML = '<tr><th>position</th><th>token</th><th>KL</th><th>student top</th><th>teacher top</th></tr>';
      alts.forEach(([i, t]) => {
        const row = document.createElement('tr');
        const top = xs => xs.map(([s, q]) => `${JSON.stringify(s)} ${fmt(q, 2)}`).join(', ');
        [String(i), JSON.stringify(t.text), fmt(t.kl), top(t.top_student), top(t.top_teacher)].forEach(v => {
          const td = document.createElement('td'); td.textContent = v; row.appendChild(td); });
        table.appendChild(row);
      });
      box.appendChild(table);
    }
    if (probes.length) {
      const table = document.createElement('table'); table.className='alts probes';
      table.innerHTML = '<tr><th>probed position</th><th>token</th><th>role</th><th>KL</th>'
        + '<th>influence: resample</th><th>influence: reflect</th></tr>';
      probes.forEach(([i, t]) => {
        const row = document.createElement('tr');
        const cells = [String(i), JSON.stringify(t.text), t.probe.role, fmt(t.kl), fmt(t.probe.resample, 2),
                       fmt(t.probe.reflect, 2)];
        cells.forEach(v => {
          const td = document.createElement('td'); td.textContent = v; row.appendChild(td); });
        table.appendChild(row);
      });
      box.appendChild(table);
    }
    section.appendChild(box);
  });
  root.appendChild(section);
});
if (data.interventions) {
  const pre = document.getElementById('interventions-summary'); pre.textContent = data.interventions.table;
  pre.parentElement.hidden = false;
}
document.body.dataset.ready = '1';
"""


def render_inspect_html(payload: dict[str, Any]) -> str:
    """One HTML file: the payload as JSON plus the script that draws it (works offline, no external assets)."""
    args = payload.get("arguments", {})
    data = json.dumps(finite_or_none(payload), allow_nan=False).replace("</", "<\\/")  # JSON.parse: no NaN
    title = html.escape(payload.get("title") or f"rlrt inspect: {args.get('model', '')} on {args.get('dataset', '')}")
    settings = html.escape(payload.get("settings") or (
        f"shaping={args.get('shaping')}  lam={args.get('shaping_lambda')}  eps_w={args.get('shaping_eps_w')}  "
        f"context={args.get('teacher_context')}  samples={args.get('num_samples')}  "
        f"temperature={args.get('temperature')}"
    ))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>
<body>
<h1>{title}</h1>
<p class="meta">{settings}</p>
<p class="legend"><span style="background:rgba(220,50,47,.6)">self-driven: D &gt; 0</span>
<span style="background:rgba(38,139,210,.6)">teacher-predicted: D &lt; 0</span>
<span style="outline:2px solid #6f42c1">&#9733; largest KL(P_S || P_T): critical decision points</span>
Hover a token for D = log P_S &minus; log P_T and its RLRT multiplier.</p>
<section hidden><h2>Interventions: flip rate at top-KL vs random positions</h2>
<p class="legend"><span style="border-bottom:3px solid #d62728">top-KL probed position</span>
<span style="border-bottom:3px solid #1f77b4">random probed position</span>
<span style="border-bottom:3px solid #b08800">other probed position (full probe)</span>
The underlined token is the first one regenerated; hover it for its influence.</p>
<pre class="summary" id="interventions-summary"></pre></section>
<div id="problems"></div>
<script id="rlrt-data" type="application/json">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
