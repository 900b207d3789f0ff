// Drives the dashboard in headless Chromium (playwright-core, the machine's Chromium):
// loads the page, reads the rendered numbers, applies a filter, drills down into an agent
// and a model, and takes screenshots. Prints one JSON object on stdout.
//
// usage: node dashboard.js URL AGENT MODEL SHOT_DIR
const { chromium } = require("playwright-core");

const [url, agent, model, shots] = process.argv.slice(2);

async function loads(page, n) {
  await page.waitForFunction((n) => Number(document.body.dataset.loaded || 0) >= n, n, { timeout: 20000 });
}

async function read(page) {
  return page.evaluate(() => {
    const cells = (sel) => [...document.querySelectorAll(sel)].map((tr) => ({
      key: tr.dataset.key || tr.cells[0].textContent,
      usd: [...tr.querySelectorAll(".usd")].map((u) => u.dataset.usd),
      title: [...tr.querySelectorAll(".usd")].map((u) => u.title),
    }));
    return {
      cost: document.querySelector("#kpi-cost .usd").dataset.usd,
      cost_title: document.querySelector("#kpi-cost .usd").title,
      requests: document.querySelector("#kpi-requests b").textContent,
      agents: cells("#agents > .body > table tbody tr"),
      departments: cells("#departments table tbody tr"),
      projects: cells("#projects table tbody tr"),
      models: cells("#models > .body > table tbody tr"),
      series_rects: document.querySelectorAll("#series svg rect").length,
      department_bars: document.querySelectorAll("#departments svg rect").length,
      budgets: cells("#budgets table tbody tr"),
      savings: cells("#savings table tbody tr"),
      sections: [...document.querySelectorAll("main section h2")].map((h) => h.firstChild.textContent.trim()),
      fresh: document.getElementById("fresh").textContent,
      external: [...document.querySelectorAll("script[src],link[href],img[src]")].length,
    };
  });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const out = {};
  const requests = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(url);
    await loads(page, 1);
    out.all = await read(page);
    await page.screenshot({ path: shots + "/dashboard.png", fullPage: true });
    // A filter: one agent; every view follows.
    const before = Number(await page.evaluate(() => document.body.dataset.loaded));
    await page.selectOption("#f-agent", agent);
    await loads(page, before + 1);
    out.filtered = await read(page);
    // Drill down: the agent's models and projects, then a model's agents.
    await page.selectOption("#f-agent", "");
    await loads(page, before + 2);
    await page.click(`#agents tr.click[data-key="${agent}"]`);
    await page.waitForSelector("#agent-drill");
    out.agent_drill = await page.evaluate(() => [...document.querySelectorAll("#agent-drill tbody tr")].map((tr) => tr.cells[0].textContent));
    await page.click(`#models tr.click[data-key="${model}"]`);
    await page.waitForSelector("#model-drill");
    out.model_drill = await page.evaluate(() => [...document.querySelectorAll("#model-drill tbody tr")].map((tr) => tr.cells[0].textContent));
    await page.screenshot({ path: shots + "/dashboard-drill.png", fullPage: true });
    // One picture per view (for the README).
    for (const id of ["kpis", "agents", "departments", "projects", "models", "series", "budgets", "savings"]) {
      await page.locator("#" + id).screenshot({ path: `${shots}/view-${id}.png` });
    }
    // A phone.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(url);
    await loads(phone, 1);
    out.phone_overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await phone.screenshot({ path: shots + "/dashboard-phone.png", fullPage: true });
    out.requests = requests;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
