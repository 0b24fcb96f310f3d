/**
 * Reports: result tables (arquero, mean ± std, the paper's numbers beside
 * ours), Plotly figures (JSON specs, self-contained HTML, PNG via headless
 * Chromium) and notebook displays.
 *
 * @module
 */
export * from "./cost.ts";
export * from "./diagnostics.ts";
export * from "./display.ts";
export * from "./experiment_report.ts";
export * from "./figure.ts";
export * from "./frontier.ts";
export * from "./glance.ts";
export * from "./paper.ts";
export * from "./paper_display.ts";
export * from "./stats.ts";
export * from "./table.ts";
export * from "./verdict.ts";
