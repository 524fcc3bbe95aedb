import Foundation

/// Training curves of one or more metrics logs as a self-contained SVG (no scripts, no external fonts), two
/// panels stacked over a shared step axis:
///
/// 1. loss: `loss` (thick), `mlm_loss` and `nsp_loss` (thin, dashed) of the train points, and `eval_loss` as dots;
/// 2. eval accuracy: `eval_mlm_accuracy` and `eval_nsp_accuracy` when any log has eval points, otherwise
///    `learning_rate` of the train points.
///
/// One log: one colour per series. Several logs: one colour per log (named in the legend), the series told apart
/// by line width and dashes. Points are sorted by step (a repeated step keeps its last value, as after a resumed
/// run); NaN and ±inf values are skipped and counted in a footnote; a series of more than `maxPointsPerSeries`
/// points is thinned by `decimate(_:limit:)`.
public struct CurvePlot {
    /// One log: its name in the legend and its records.
    public struct Run: Sendable {
        public var name: String
        public var records: [MetricsRecord]

        public init(name: String, records: [MetricsRecord]) {
            self.name = name
            self.records = records
        }
    }

    /// A point in data coordinates: `x` the step, `y` the value.
    public struct Point: Equatable, Sendable {
        public var x: Double
        public var y: Double

        public init(x: Double, y: Double) {
            self.x = x
            self.y = y
        }
    }

    public var runs: [Run]
    public var title: String
    public var maxPointsPerSeries = 2000

    public init(runs: [Run], title: String) {
        self.runs = runs
        self.title = title
    }

    // MARK: Layout (SVG user units)

    static let width = 960.0
    static let plotLeft = 78.0
    static let plotWidth = 640.0
    static let legendLeft = plotLeft + plotWidth + 22
    static let firstPlotTop = 78.0
    static let plotHeight = 270.0
    static let panelGap = 96.0  // from one plot area's bottom to the next one's top
    static let lineHeight = 16.0

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// How one metric is drawn: its log key, record kind, line width and dashes; `color` is used when there is
    /// a single run (several runs take their colour from the run).
    struct Style {
        var key: String
        var kind: MetricsRecord.Kind
        var width: Double
        var dash: String?
        var dots: Bool
        var color: String
        var layer: Int  // drawing order: higher on top
    }

    struct Series {
        var run: Int
        var style: Style
        var points: [Point]
        var pointsBeforeDecimation: Int
        var skipped: Int  // non-finite values left out
    }

    struct Panel {
        var heading: String
        var yLabel: String
        var styles: [Style]  // those drawn
        var keys: [String]  // all the panel shows when present
        var series: [Series]
    }

    static let lossStyles = [
        Style(key: "loss", kind: .train, width: 2, dash: nil, dots: false, color: palette[0], layer: 2),
        Style(key: "mlm_loss", kind: .train, width: 1.1, dash: "6 3", dots: false, color: palette[1], layer: 1),
        Style(key: "nsp_loss", kind: .train, width: 1.1, dash: "2 2", dots: false, color: palette[2], layer: 1),
        Style(key: "eval_loss", kind: .eval, width: 1, dash: "1 3", dots: true, color: palette[3], layer: 3),
    ]
    static let accuracyStyles = [
        Style(key: "eval_mlm_accuracy", kind: .eval, width: 2, dash: nil, dots: true, color: palette[0], layer: 2),
        Style(key: "eval_nsp_accuracy", kind: .eval, width: 1.1, dash: "6 3", dots: true, color: palette[1], layer: 1),
    ]
    static let learningRateStyles = [
        Style(key: "learning_rate", kind: .train, width: 1.5, dash: nil, dots: false, color: palette[4], layer: 1),
    ]

    // MARK: Rendering

    /// The SVG document.
    /// - Throws: `BertError.invalidInput` when there are no runs, or a run has no train or eval records.
    public func svg() throws -> String {
        guard !runs.isEmpty else { throw BertError.invalidInput("plot: no metrics logs given") }
        for run in runs where !run.records.contains(where: { $0.kind != .summary }) {
            throw BertError.invalidInput("\(run.name): no train or eval records (an empty log?)")
        }
        let hasEval = runs.contains { run in
            run.records.contains { $0.kind == .eval && ($0.evalMLMAccuracy != nil || $0.evalNSPAccuracy != nil) }
        }
        let panels = [
            panel(heading: "Loss", yLabel: "loss", styles: Self.lossStyles),
            hasEval ? panel(heading: "Eval accuracy", yLabel: "accuracy", styles: Self.accuracyStyles)
                    : panel(heading: "Learning rate", yLabel: "learning rate", styles: Self.learningRateStyles),
        ]
        let steps = runs.flatMap { $0.records.filter { $0.kind != .summary }.map { Double($0.step) } }
        let xAxis = Axis(steps.min()!, steps.max()!, integer: true)

        let notes = footnotes(panels).flatMap { Self.wrapped($0, width: 130) }
        let lastBottom = Self.firstPlotTop + Double(panels.count - 1) * (Self.plotHeight + Self.panelGap) + Self.plotHeight
        let footTop = lastBottom + 64
        let height = notes.isEmpty ? lastBottom + 52 : footTop + Double(notes.count - 1) * Self.lineHeight + 14

        var svg = SVGWriter()
        svg.line("<?xml version='1.0' encoding='UTF-8'?>")
        svg.line("<svg xmlns='http://www.w3.org/2000/svg' width='\(n(Self.width))' height='\(n(height))' "
                 + "viewBox='0 0 \(n(Self.width)) \(n(height))' "
                 + "font-family='DejaVu Sans, Verdana, Helvetica, Arial, sans-serif' font-size='12' fill='#222'>")
        svg.line("<title>\(xml(title))</title>")
        svg.line("<rect width='100%' height='100%' fill='#ffffff'/>")
        svg.line("<text class='title' x='\(n(Self.plotLeft))' y='34' font-size='18' font-weight='bold'>"
                 + "\(xml(Self.shortened(title, to: 80)))</text>")
        for (index, panel) in panels.enumerated() {
            draw(panel, top: Self.firstPlotTop + Double(index) * (Self.plotHeight + Self.panelGap), xAxis: xAxis, into: &svg)
        }
        for (index, note) in notes.enumerated() {
            svg.line("<text class='footnote' x='\(n(Self.plotLeft))' y='\(n(footTop + Double(index) * Self.lineHeight))' "
                     + "font-size='11' fill='#555'>\(xml(note))</text>")
        }
        svg.line("</svg>")
        return svg.text
    }

    /// The panel's series: one per run and style that the run's records have, points sorted by step.
    func panel(heading: String, yLabel: String, styles: [Style]) -> Panel {
        var series: [Series] = []
        for (runIndex, run) in runs.enumerated() {
            for style in styles {
                var byStep: [Int: Double] = [:]
                for record in run.records where record.kind == style.kind {
                    if let value = record[style.key] { byStep[record.step] = value }
                }
                guard !byStep.isEmpty else { continue }
                let finite = byStep.filter { $0.value.isFinite }
                let points = finite.keys.sorted().map { Point(x: Double($0), y: finite[$0]!) }
                series.append(Series(run: runIndex, style: style, points: Self.decimate(points, limit: maxPointsPerSeries),
                                     pointsBeforeDecimation: points.count, skipped: byStep.count - finite.count))
            }
        }
        return Panel(heading: heading, yLabel: yLabel, styles: styles.filter { s in series.contains { $0.style.key == s.key } },
                     keys: styles.map(\.key), series: series)
    }

    func draw(_ panel: Panel, top: Double, xAxis: Axis, into svg: inout SVGWriter) {
        let left = Self.plotLeft, width = Self.plotWidth, height = Self.plotHeight, bottom = top + height
        let values = panel.series.flatMap { $0.points.map(\.y) }
        let yAxis = values.isEmpty ? nil : Axis(values.min()!, values.max()!, integer: false)
        func px(_ x: Double) -> Double { left + xAxis.fraction(x) * width }
        func py(_ y: Double) -> Double { bottom - yAxis!.fraction(y) * height }

        svg.line("<g class='panel' data-panel='\(xml(panel.yLabel))'>")
        svg.line("<text x='\(n(left))' y='\(n(top - 10))' font-size='14' font-weight='bold'>\(xml(panel.heading))</text>")
        svg.line("<rect class='plot-area' x='\(n(left))' y='\(n(top))' width='\(n(width))' height='\(n(height))' "
                 + "fill='#ffffff' stroke='none'/>")

        // Grid, tick marks and tick labels.
        svg.line("<g class='grid' stroke='#e6e6e6' stroke-width='1'>")
        for tick in xAxis.ticks { svg.line("<line x1='\(n(px(tick)))' y1='\(n(top))' x2='\(n(px(tick)))' y2='\(n(bottom))'/>") }
        for tick in yAxis?.ticks ?? [] { svg.line("<line x1='\(n(left))' y1='\(n(py(tick)))' x2='\(n(left + width))' y2='\(n(py(tick)))'/>") }
        svg.line("</g>")
        svg.line("<rect x='\(n(left))' y='\(n(top))' width='\(n(width))' height='\(n(height))' fill='none' stroke='#888'/>")
        svg.line("<g class='x-ticks' font-size='11' text-anchor='middle' fill='#444'>")
        for tick in xAxis.ticks {
            svg.line("<line x1='\(n(px(tick)))' y1='\(n(bottom))' x2='\(n(px(tick)))' y2='\(n(bottom + 4))' stroke='#888'/>")
            svg.line("<text x='\(n(px(tick)))' y='\(n(bottom + 17))'>\(xAxis.label(tick))</text>")
        }
        svg.line("</g>")
        svg.line("<text class='x-label' x='\(n(left + width / 2))' y='\(n(bottom + 36))' text-anchor='middle' fill='#444'>step</text>")
        if let yAxis {
            svg.line("<g class='y-ticks' font-size='11' text-anchor='end' fill='#444'>")
            for tick in yAxis.ticks {
                svg.line("<line x1='\(n(left - 4))' y1='\(n(py(tick)))' x2='\(n(left))' y2='\(n(py(tick)))' stroke='#888'/>")
                svg.line("<text x='\(n(left - 7))' y='\(n(py(tick) + 4))'>\(yAxis.label(tick))</text>")
            }
            svg.line("</g>")
        } else {
            svg.line("<text x='\(n(left + width / 2))' y='\(n(top + height / 2))' text-anchor='middle' fill='#888'>"
                     + "no finite \(xml(panel.keys.joined(separator: " or "))) values</text>")
        }
        let yLabelX = left - 58, yLabelY = top + height / 2
        svg.line("<text class='y-label' x='\(n(yLabelX))' y='\(n(yLabelY))' text-anchor='middle' fill='#444' "
                 + "transform='rotate(-90 \(n(yLabelX)) \(n(yLabelY)))'>\(xml(panel.yLabel))</text>")

        // Series: thin lines first, dots on top.
        let multiRun = runs.count > 1
        for series in panel.series.sorted(by: { $0.style.layer < $1.style.layer }) where !series.points.isEmpty {
            let style = series.style, color = multiRun ? Self.palette[series.run % Self.palette.count] : style.color
            let points = series.points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
            let dash = style.dash.map { " stroke-dasharray='\($0)'" } ?? ""
            let opacity = multiRun ? " stroke-opacity='0.85'" : ""
            svg.line("<polyline class='series' data-run='\(series.run)' data-key='\(style.key)' fill='none' "
                     + "stroke='\(color)' stroke-width='\(n(style.width))'\(dash)\(opacity) stroke-linejoin='round' "
                     + "stroke-linecap='round' points='\(points)'><title>\(xml(runs[series.run].name)): \(style.key)</title></polyline>")
            if (style.dots && series.points.count <= 400) || series.points.count == 1 {
                svg.line("<g class='dots' fill='\(color)'>")
                for point in series.points {
                    svg.line("<circle cx='\(n(px(point.x)))' cy='\(n(py(point.y)))' r='\(style.dots ? "2.8" : "2.2")'/>")
                }
                svg.line("</g>")
            }
        }
        drawLegend(panel, top: top, into: &svg)
        svg.line("</g>")
    }

    /// The legend right of the plot area: one row per style; with several runs the styles in grey, then one
    /// row per run in its colour.
    func drawLegend(_ panel: Panel, top: Double, into svg: inout SVGWriter) {
        let multiRun = runs.count > 1
        var y = top + 10
        func row(_ label: String, color: String, width: Double, dash: String?, dots: Bool) {
            let x = Self.legendLeft
            let dashAttribute = dash.map { " stroke-dasharray='\($0)'" } ?? ""
            svg.line("<line x1='\(n(x))' y1='\(n(y))' x2='\(n(x + 26))' y2='\(n(y))' stroke='\(color)' "
                     + "stroke-width='\(n(max(width, 1.4)))'\(dashAttribute)/>")
            if dots { svg.line("<circle cx='\(n(x + 13))' cy='\(n(y))' r='2.8' fill='\(color)'/>") }
            svg.line("<text x='\(n(x + 34))' y='\(n(y + 4))'>\(xml(label))</text>")
            y += Self.lineHeight + 2
        }
        svg.line("<g class='legend' font-size='12'>")
        for style in panel.styles {
            row(style.key, color: multiRun ? "#555555" : style.color, width: style.width, dash: style.dash, dots: style.dots)
        }
        if multiRun {
            y += 6
            for (index, run) in runs.enumerated() {
                row(Self.shortened(run.name, to: 24), color: Self.palette[index % Self.palette.count], width: 3, dash: nil, dots: false)
            }
        }
        svg.line("</g>")
    }

    /// Skipped values, thinned series and each run's summary, one line each.
    func footnotes(_ panels: [Panel]) -> [String] {
        var notes: [String] = []
        let series = panels.flatMap(\.series)
        let multiRun = runs.count > 1
        func name(_ s: Series) -> String { multiRun ? "\(runs[s.run].name) \(s.style.key)" : s.style.key }
        let skipped = series.filter { $0.skipped > 0 }
        if !skipped.isEmpty {
            let total = skipped.reduce(0) { $0 + $1.skipped }
            notes.append("\(total) NaN/inf value\(total == 1 ? "" : "s") skipped: "
                         + skipped.map { "\(name($0)) \($0.skipped)" }.joined(separator: ", "))
        }
        let thinned = series.filter { $0.points.count < $0.pointsBeforeDecimation }
        if !thinned.isEmpty {
            notes.append("Thinned to ≤ \(maxPointsPerSeries) points (min and max per bucket, first and last kept): "
                         + thinned.map { "\(name($0)) \($0.pointsBeforeDecimation) → \($0.points.count)" }.joined(separator: ", "))
        }
        let order = ["final_loss", "mlm_accuracy", "training_sequences_per_second", "e2e_train_time"]
        for run in runs {
            guard let summary = run.records.last(where: { $0.kind == .summary }) else { continue }
            let keys = order.filter { summary[$0] != nil } + summary.values.keys.filter { !order.contains($0) }.sorted()
            let fields = keys.map { "\($0) \(Self.compact(summary[$0]!))" }
            notes.append("Summary\(multiRun ? " of \(run.name)" : ""), step \(summary.step): " + fields.joined(separator: ", "))
        }
        return notes
    }

    // MARK: Helpers

    /// At most `limit` points of `points` (sorted by x): the first and the last, and between them, in
    /// `(limit − 2) / 2` equal buckets of the interior, each bucket's lowest and highest point in x order, so
    /// spikes survive. Fewer than `limit` points come back unchanged.
    public static func decimate(_ points: [Point], limit: Int) -> [Point] {
        guard points.count > limit else { return points }
        guard limit >= 2 else { return Array(points.prefix(limit)) }
        let buckets = (limit - 2) / 2, interior = points.count - 2
        var out = [points[0]]
        out.reserveCapacity(limit)
        for b in 0..<buckets {
            let lo = 1 + b * interior / buckets, hi = 1 + (b + 1) * interior / buckets
            guard lo < hi else { continue }
            var low = lo, high = lo
            for j in lo..<hi {
                if points[j].y < points[low].y { low = j }
                if points[j].y > points[high].y { high = j }
            }
            out.append(points[min(low, high)])
            if low != high { out.append(points[max(low, high)]) }
        }
        out.append(points[points.count - 1])
        return out
    }

    /// A linear axis whose ends are round tick values ("nice numbers": 1, 2 or 5 × 10ᵏ apart) enclosing the data.
    public struct Axis: Sendable {
        public var lower: Double
        public var upper: Double
        public var step: Double
        public var ticks: [Double]

        /// - Parameters:
        ///   - integer: ticks at whole numbers only (steps).
        public init(_ low: Double, _ high: Double, integer: Bool, tickCount: Int = 6) {
            var low = low, high = high
            if high - low <= abs(high) * 1e-12 {  // one value: widen around it
                let pad = integer ? 1 : (low == 0 ? 1 : abs(low) * 0.1)
                low -= pad
                high += pad
            }
            var step = Self.nice((high - low) / Double(max(tickCount - 1, 1)))
            if integer { step = max(step, 1) }
            let first = (low / step + 1e-9).rounded(.down), last = (high / step - 1e-9).rounded(.up)
            guard step.isFinite, step > 0, last - first >= 1, last - first <= 100 else {  // a span past Double's range
                (self.lower, self.upper, self.step, self.ticks) = (low, high, high - low, [low, high])
                return
            }
            self.step = step
            self.ticks = stride(from: first, through: last, by: 1).map { $0 * step }
            self.lower = first * step
            self.upper = last * step
        }

        /// 1, 2, 5 or 10 × 10ᵏ, the nearest to `x`.
        static func nice(_ x: Double) -> Double {
            let exponent = (log10(x)).rounded(.down), magnitude = pow(10, exponent), f = x / magnitude
            return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude
        }

        /// Where `value` falls between the ends, 0…1.
        public func fraction(_ value: Double) -> Double { (value - lower) / (upper - lower) }

        /// A tick label with as many decimals as the tick spacing needs. For tiny spacings (learning rates) and
        /// huge values every label takes the exponent of the axis's largest value, so they line up: 1.4e-5, 0.8e-5.
        public func label(_ value: Double) -> String {
            guard step.isFinite else { return String(format: "%.2e", value) }
            if abs(value) < step * 1e-6 { return "0" }
            let stepExponent = Int((log10(step) + 1e-9).rounded(.down))
            if step >= 1e-3 && max(abs(lower), abs(upper)) < 1e7 {
                return String(format: "%.\(max(0, -stepExponent))f", value)
            }
            let exponent = Int((log10(max(abs(lower), abs(upper))) + 1e-9).rounded(.down))
            let mantissa = value / pow(10, Double(exponent))
            return String(format: "%.\(max(0, exponent - stepExponent))f", mantissa) + "e\(exponent)"
        }
    }

    /// A value in four significant digits.
    static func compact(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        return abs(value) >= 1e5 || (abs(value) < 1e-3 && value != 0) ? String(format: "%.3e", value) : String(format: "%.4g", value)
    }

    /// `text` broken after ", " into lines of at most about `width` characters (continuation lines indented).
    static func wrapped(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], current = ""
        for piece in text.components(separatedBy: ", ") {
            if current.isEmpty { current = piece; continue }
            if current.count + 2 + piece.count > width {
                lines.append(current + ",")
                current = "    " + piece
            } else {
                current += ", " + piece
            }
        }
        return lines + [current]
    }

    /// `text` cut to `limit` characters, keeping its end (file names differ at the end) behind "…".
    static func shortened(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : "…" + text.suffix(limit - 1)
    }
}

/// A coordinate with at most one decimal.
private func n(_ value: Double) -> String {
    guard abs(value) < 1e12 else { return String(value) }
    let tenths = (value * 10).rounded()
    if tenths.truncatingRemainder(dividingBy: 10) == 0 { return String(Int(tenths / 10)) }
    return String(tenths / 10)
}

/// `text` escaped for XML character data and attribute values.
private func xml(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        // XML 1.0 forbids most control characters even escaped.
        case _ where c.value < 0x20 && c != "\t" && c != "\n" && c != "\r": out += "\u{FFFD}"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

struct SVGWriter {
    var text = ""
    mutating func line(_ s: String) {
        text += s
        text += "\n"
    }
}
