/**
 * The paper's tables as printed, for notebooks whose runs here use another
 * dataset than the paper's table (so that no row of ours is comparable) and
 * for reading the paper's numbers beside ours.
 *
 * @module
 */
import { display, type Displayable } from "./display.ts";
import { PAPER, paperCells, type PaperNumbers } from "./paper.ts";
import { type AggregateRow, type Column, tableBundle } from "./table.ts";

/**
 * The paper's table `table` as rows (one per printed row) and columns (one
 * per printed column, cells as printed); the numbers of the text ("text") as
 * one row per number with its section, quantity and the text it is read from.
 */
export function paperTableRows(
  table: string,
  paper: PaperNumbers = PAPER,
): { rows: AggregateRow[]; columns: Column[] } {
  const cells = paperCells(table, paper);
  if (table === "text") {
    const rows: AggregateRow[] = cells.map((c) => ({
      row: c.row,
      column: c.column,
      printed: c.printed,
      quote: c.quote ?? "",
    }));
    const columns: Column[] = [
      { header: "section", cell: (r) => String(r.row) },
      { header: "quantity", cell: (r) => String(r.column) },
      { header: "number", cell: (r) => String(r.printed) },
      { header: "as stated", cell: (r) => String(r.quote) },
    ];
    return { rows, columns };
  }
  const rowNames = [...new Set(cells.map((c) => c.row))];
  const colNames = [...new Set(cells.map((c) => c.column))];
  const rows: AggregateRow[] = rowNames.map((row) => {
    const r: AggregateRow = { row };
    for (const c of cells) if (c.row === row) r[c.column] = c.printed;
    return r;
  });
  const columns: Column[] = [
    { header: "row", cell: (r) => String(r.row) },
    ...colNames.map((name) => ({ header: name, cell: (r: AggregateRow) => (r[name] ?? "—") as string })),
  ];
  return { rows, columns };
}

/** The paper's table `table` as a notebook display (HTML + text), captioned with its title and status. */
export function paperTableDisplay(table: string, paper: PaperNumbers = PAPER): Displayable {
  const t = paper.tables[table];
  const name = table === "text"
    ? "Numbers of the text"
    : table.startsWith("fig")
    ? `Figure ${table.slice(3)}`
    : `Table ${table}`;
  const caption = t === undefined
    ? `Paper, ${name}: not in paper_numbers.json`
    : `Paper, ${name}: ${t.title} (${t.status})`;
  const notes = paperCells(table, paper).filter((c) => c.note !== undefined).map((c) =>
    `${c.row}, ${c.column}: ${c.note}`
  );
  const { rows, columns } = paperTableRows(table, paper);
  const bundle = tableBundle(rows, columns, caption);
  const text = [bundle["text/plain"], ...notes].join("\n");
  const html = bundle["text/html"] + notes.map((n) => `<p>${n.replaceAll("<", "&lt;")}</p>`).join("");
  return display({ "text/html": html, "text/plain": text });
}
