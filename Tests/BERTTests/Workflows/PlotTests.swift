import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import BERT

/// The metrics log reader and the SVG curves of `bert plot`; fixtures are written here, not read from files.
@Suite struct PlotTests {
    static let fullLog = """
        {"type":"train","step":1,"loss":7.1,"mlm_loss":6.4,"nsp_loss":0.69,"learning_rate":0.00012,"grad_norm":1.3,"seq_per_s":41.2,"elapsed":33.5}
        {"type":"train","step":2,"loss":NaN,"mlm_loss":6.3,"nsp_loss":null,"learning_rate":"inf","note":"x","extra":[1,{"a":2}]}

        {"type":"checkpoint","step":2,"path":"ckpt"}
        {"step":3,"loss":1}
        {"type":"eval","step":2,"eval_mlm_loss":6.2,"eval_mlm_accuracy":0.081,"eval_nsp_loss":0.68,"eval_nsp_accuracy":0.55,"eval_loss":6.9}
        {"type":"summary","step":2,"e2e_train_time":250.1,"training_sequences_per_second":40.9,"final_loss":6.1,"mlm_accuracy":0.12}
        """

    static func parse(_ text: String) throws -> [MetricsRecord] {
        try MetricsLog.parse(Data(text.utf8), source: "run.jsonl")
    }

    @Test func parsesTheThreeTypes() throws {
        let records = try Self.parse(Self.fullLog)
        #expect(records.map(\.kind) == [.train, .train, .eval, .summary])
        #expect(records.map(\.step) == [1, 2, 2, 2])
        let first = records[0]
        #expect(first.loss == 7.1 && first.mlmLoss == 6.4 && first.nspLoss == 0.69 && first.learningRate == 0.00012)
        #expect(first["grad_norm"] == 1.3 && first["seq_per_s"] == 41.2 && first["elapsed"] == 33.5)
        #expect(first.values.count == 7)  // every numeric field but step
        let second = records[1]
        #expect(second.loss?.isNaN == true && second.nspLoss?.isNaN == true && second.learningRate == .infinity)
        #expect(second["note"] == nil && second["extra"] == nil)
        let eval = records[2]
        #expect(eval.evalLoss == 6.9 && eval.evalMLMAccuracy == 0.081 && eval.evalNSPAccuracy == 0.55)
        #expect(eval["eval_mlm_loss"] == 6.2 && eval["eval_nsp_loss"] == 0.68)
        let summary = records[3]
        #expect(summary["final_loss"] == 6.1 && summary["mlm_accuracy"] == 0.12 && summary["e2e_train_time"] == 250.1)
        #expect(try Self.parse("") == [] && Self.parse("\n \n") == [])
        #expect(try Self.parse(#"{"type":"train","step":5.0,"loss":-Infinity,"x":1e-3}"#)[0].loss == -.infinity)
    }

    @Test func malformedLinesNameTheLine() throws {
        let cases: [(String, String)] = [
            ("{\"type\":\"train\",\"step\":1,\"loss\":2}\n\nnot json\n", "run.jsonl:3: not a JSON object"),
            ("[1, 2]", "run.jsonl:1: not a JSON object (expected '{', found '[')"),
            ("{\"type\":\"train\",\"step\":1,\"loss\":2", "run.jsonl:1:"),
            ("{\"type\":\"train\",\"step\":1} trailing", "run.jsonl:1: not a JSON object (text after"),
            ("{\"type\":\"train\",\"step\":1,\"loss\":01}", "run.jsonl:1:"),
            ("{\"type\":\"eval\",\"loss\":1}", "run.jsonl:1: a eval record needs an integral \"step\""),
            ("{\"type\":\"train\",\"step\":1.5}", "run.jsonl:1: a train record needs"),
        ]
        for (text, message) in cases {
            do {
                _ = try Self.parse(text)
                Issue.record("no error for \(text)")
            } catch let error as BertError {
                #expect(error.description.hasPrefix(message), "\(error)")
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test func readNamesAMissingFile() throws {
        #expect(throws: BertError.io("/nonexistent/run.jsonl: no such file")) {
            try MetricsLog.read(path: "/nonexistent/run.jsonl")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plot-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(Self.fullLog.utf8).write(to: URL(fileURLWithPath: path))
        let records = try MetricsLog.read(path: path)
        let expected = try Self.parse(Self.fullLog)
        #expect(records.map(\.kind) == [.train, .train, .eval, .summary] && records[0] == expected[0])
    }

    // MARK: SVG

    /// The elements of an SVG, in document order, as XMLParser reports them (so the document is well-formed).
    final class Elements: NSObject, XMLParserDelegate {
        var all: [(name: String, attributes: [String: String])] = []
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            all.append((name, attributes))
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func named(_ name: String, _ attribute: String? = nil, _ value: String? = nil) -> [[String: String]] {
            all.filter { $0.name == name && (attribute == nil || $0.attributes[attribute!] == value) }.map(\.attributes)
        }
    }

    static func elements(_ svg: String) throws -> Elements {
        let parser = XMLParser(data: Data(svg.utf8))
        let elements = Elements()
        parser.delegate = elements
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(elements.all.first?.name == "svg")
        return elements
    }

    static func points(_ polyline: [String: String]) -> [(x: Double, y: Double)] {
        (polyline["points"] ?? "").split(separator: " ").map { pair in
            let xy = pair.split(separator: ",").map { Double($0)! }
            return (xy[0], xy[1])
        }
    }

    static func plotAreas(_ elements: Elements) -> [(x: Double, y: Double, width: Double, height: Double)] {
        elements.named("rect", "class", "plot-area").map {
            (Double($0["x"]!)!, Double($0["y"]!)!, Double($0["width"]!)!, Double($0["height"]!)!)
        }
    }

    static func run(_ name: String, _ text: String) throws -> CurvePlot.Run {
        CurvePlot.Run(name: name, records: try parse(text))
    }

    @Test func oneWellFormedPolylinePerSeriesInStepOrder() throws {
        var log = ""
        for step in stride(from: 10, through: 400, by: 10) {
            let loss = 8 - Double(step) / 100
            log += #"{"type":"train","step":\#(step),"loss":\#(loss),"mlm_loss":\#(loss - 0.7),"nsp_loss":0.7,"learning_rate":1e-4}"# + "\n"
            if step % 100 == 0 {
                log += #"{"type":"eval","step":\#(step),"eval_loss":\#(loss),"eval_mlm_accuracy":0.\#(step / 100),"eval_nsp_accuracy":0.5}"# + "\n"
            }
        }
        // A resumed run logs steps again: the later value wins, the order stays by step.
        log += #"{"type":"train","step":200,"loss":6.5,"mlm_loss":5.8,"nsp_loss":0.7}"# + "\n"
        let svg = try CurvePlot(runs: [Self.run("run <1> & \"a\".jsonl", log)], title: "t < 1 & 'q'").svg()
        let elements = try Self.elements(svg)
        #expect(elements.text.contains("t < 1 & 'q'") && elements.text.contains("run <1> & \"a\".jsonl: loss"))
        let series = elements.named("polyline", "class", "series")
        #expect(series.map { $0["data-key"]! }.sorted()
                == ["eval_loss", "eval_mlm_accuracy", "eval_nsp_accuracy", "loss", "mlm_loss", "nsp_loss"])
        let lossColours = Set(series.filter { !$0["data-key"]!.hasSuffix("accuracy") }.map { $0["stroke"]! })
        let accuracyColours = Set(series.filter { $0["data-key"]!.hasSuffix("accuracy") }.map { $0["stroke"]! })
        #expect(lossColours.count == 4 && accuracyColours.count == 2, "one colour per series with one run")
        for polyline in series {
            let points = Self.points(polyline)
            #expect(points.count == (polyline["data-key"]!.hasPrefix("eval") ? 4 : 40), "\(polyline["data-key"]!)")
            #expect(zip(points, points.dropFirst()).allSatisfy { $0.x < $1.x }, "x increases with step")
        }
        let loss = Self.points(series.first { $0["data-key"] == "loss" }!)
        let areas = Self.plotAreas(elements)
        #expect(areas.count == 2)
        // Step 10…400 on an axis 0…400: step 200 sits halfway; its re-logged 6.5 is above the neighbours.
        #expect(abs(loss[19].x - (areas[0].x + areas[0].width / 2)) <= 0.05)
        #expect(loss[19].y < loss[18].y && loss[19].y < loss[20].y)
        #expect(elements.named("text").count > 20 && elements.text.contains("Eval accuracy"))
        #expect(!svg.contains("<script") && !svg.contains("@font-face") && !svg.contains("href"))
    }

    @Test func valuesMapOntoThePlotArea() throws {
        // Steps 0…20 and losses 2…8 are already round: the axes end exactly at the data.
        let log = """
            {"type":"train","step":0,"loss":5,"learning_rate":0}
            {"type":"train","step":10,"loss":2,"learning_rate":1}
            {"type":"train","step":20,"loss":8,"learning_rate":0.5}
            """
        let elements = try Self.elements(try CurvePlot(runs: [Self.run("tiny", log)], title: "tiny").svg())
        let areas = Self.plotAreas(elements)
        let series = elements.named("polyline", "class", "series")
        #expect(series.map { $0["data-key"]! } == ["loss", "learning_rate"])
        for (index, key) in ["loss", "learning_rate"].enumerated() {
            let points = Self.points(series.first { $0["data-key"] == key }!)
            let area = areas[index], bottom = area.y + area.height
            #expect(points.map(\.x) == [area.x, area.x + area.width / 2, area.x + area.width])
            let expected = key == "loss" ? [bottom - area.height / 2, bottom, area.y] : [bottom, area.y, bottom - area.height / 2]
            #expect(zip(points.map(\.y), expected).allSatisfy { abs($0 - $1) <= 0.05 }, "\(key): \(points)")
        }
        #expect(elements.text.contains("Learning rate"), "no eval points: the second panel shows the learning rate")
    }

    @Test func onePointConstantValuesAndNonFinite() throws {
        let one = try Self.elements(try CurvePlot(runs: [Self.run("one", #"{"type":"train","step":7,"loss":3}"#)], title: "one").svg())
        let point = Self.points(one.named("polyline", "data-key", "loss")[0])
        let area = Self.plotAreas(one)[0]
        #expect(point.count == 1 && point[0].x == area.x + area.width / 2 && point[0].y == area.y + area.height / 2)
        #expect(one.named("circle").count == 1, "a lone point is drawn as a dot")

        var log = ""
        for step in 1...5 { log += #"{"type":"train","step":\#(step),"loss":4,"mlm_loss":\#(step == 3 ? "NaN" : "3.3"),"nsp_loss":Infinity}"# + "\n" }
        let svg = try CurvePlot(runs: [Self.run("flat", log)], title: "flat").svg()
        let flat = try Self.elements(svg)
        let loss = Self.points(flat.named("polyline", "data-key", "loss")[0])
        #expect(Set(loss.map(\.y)).count == 1 && loss[0].y == area.y, "3.3…4 ends on round ticks: 4 at the top")
        let constant = (1...5).map { #"{"type":"train","step":\#($0),"loss":4}"# }.joined(separator: "\n")
        let level = Self.points(try Self.elements(try CurvePlot(runs: [Self.run("c", constant)], title: "c").svg())
            .named("polyline", "data-key", "loss")[0])
        #expect(level.allSatisfy { $0.y == area.y + area.height / 2 }, "a constant series sits mid-height")
        #expect(Self.points(flat.named("polyline", "data-key", "mlm_loss")[0]).count == 4)
        #expect(flat.named("polyline", "data-key", "nsp_loss").isEmpty, "no finite value, no line")
        #expect(flat.text.contains("6 NaN/inf values skipped: mlm_loss 1, nsp_loss 5"))
        #expect(!svg.contains("nan") && !svg.contains("inf'"))
    }

    @Test func severalRunsGetOneColourEachAndTheirNamesInTheLegend() throws {
        let a = try Self.run("a.jsonl", #"{"type":"train","step":1,"loss":3}"# + "\n" + #"{"type":"train","step":2,"loss":2}"#)
        let b = try Self.run("b.jsonl", #"{"type":"train","step":1,"loss":4,"mlm_loss":3.5}"# + "\n"
                                        + #"{"type":"summary","step":1,"final_loss":4}"#)
        let elements = try Self.elements(try CurvePlot(runs: [a, b], title: "a vs b").svg())
        let series = elements.named("polyline", "class", "series").filter { $0["data-key"] == "loss" }
        #expect(series.map { $0["data-run"]! } == ["0", "1"])
        #expect(Set(series.map { $0["stroke"]! }).count == 2)
        #expect(elements.text.contains("a.jsonl") && elements.text.contains("b.jsonl"))
        #expect(elements.text.contains("Summary of b.jsonl, step 1: final_loss 4"))
        #expect(throws: BertError.invalidInput("c.jsonl: no train or eval records (an empty log?)")) {
            try CurvePlot(runs: [a, Self.run("c.jsonl", #"{"type":"summary","step":1}"#)], title: "").svg()
        }
    }

    @Test func decimationKeepsFirstLastAndSpikes() throws {
        let points = (0..<10_000).map { CurvePlot.Point(x: Double($0), y: $0 == 5_432 ? 100 : sin(Double($0) / 50)) }
        let kept = CurvePlot.decimate(points, limit: 2000)
        #expect(kept.count <= 2000 && kept.count > 1900)
        #expect(kept.first == points.first && kept.last == points.last)
        #expect(zip(kept, kept.dropFirst()).allSatisfy { $0.x < $1.x })
        #expect(kept.contains { $0.y == 100 }, "the spike survives")
        #expect(CurvePlot.decimate(Array(points.prefix(2000)), limit: 2000) == Array(points.prefix(2000)))
        #expect(CurvePlot.decimate(Array(points.prefix(7)), limit: 4) == [points[0], points[1], points[5], points[6]])

        var log = ""
        for step in 0..<5000 { log += #"{"type":"train","step":\#(step),"loss":\#(10 - Double(step) / 1000)}"# + "\n" }
        let elements = try Self.elements(try CurvePlot(runs: [Self.run("long", log)], title: "long").svg())
        let line = Self.points(elements.named("polyline", "data-key", "loss")[0])
        let area = Self.plotAreas(elements)[0]
        #expect(line.count <= 2000)
        #expect(line.first!.x == area.x && line.first!.y == area.y, "step 0, loss 10: the top left corner")
        #expect(abs(line.last!.x - (area.x + area.width * 4999 / 5000)) <= 0.05)
        #expect(elements.text.contains("loss 5000 → \(line.count)"))
    }

    @Test func axesEndOnRoundTicks() {
        let steps = CurvePlot.Axis(1, 3000, integer: true)
        #expect(steps.ticks == [0, 500, 1000, 1500, 2000, 2500, 3000] && steps.label(1500) == "1500")
        let loss = CurvePlot.Axis(1.93, 11.4, integer: false)
        #expect(loss.lower == 0 && loss.upper == 12 && loss.step == 2)
        let accuracy = CurvePlot.Axis(0.213, 0.594, integer: false)
        #expect(accuracy.lower == 0.2 && abs(accuracy.upper - 0.6) < 1e-12 && accuracy.label(accuracy.ticks[1]) == "0.3")
        let learningRate = CurvePlot.Axis(0, 1.25e-5, integer: false)
        #expect(learningRate.ticks.map(learningRate.label)
                == ["0", "0.2e-5", "0.4e-5", "0.6e-5", "0.8e-5", "1.0e-5", "1.2e-5", "1.4e-5"])
        let single = CurvePlot.Axis(12, 12, integer: true)
        #expect(single.ticks == [11, 12, 13])
        let zero = CurvePlot.Axis(0, 0, integer: false)
        #expect(zero.lower < 0 && zero.upper > 0 && zero.fraction(0) == 0.5)
        let huge = CurvePlot.Axis(-1e308, 1.7e308, integer: false)
        #expect(huge.ticks.count == 2 && huge.ticks.allSatisfy(\.isFinite) && huge.label(1.7e308) == "1.70e+308", "a span past Double's range does not hang")
    }

    /// `bert plot` as a user runs it: the SVG written atomically and its path printed; one-line errors.
    @Test(.enabled(if: BertProgram.present)) func plotCommand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plot-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ text: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let a = try file("a.jsonl", Self.fullLog), b = try file("b.jsonl", #"{"type":"train","step":3,"loss":5}"#)
        let output = dir.appendingPathComponent("curve.svg").path
        let ok = try BertProgram.run(["plot", a, b, "-o", output, "--title", "A & B"])
        #expect(ok.status == 0 && ok.out == output + "\n", "\(ok.err)")
        let svg = try String(contentsOfFile: output, encoding: .utf8)
        let elements = try Self.elements(svg)
        #expect(elements.text.contains("A & B") && elements.text.contains("b.jsonl"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["a.jsonl", "b.jsonl", "curve.svg"])

        let bad = try file("bad.jsonl", "{\"type\":\"train\",\"step\":1,\"loss\":2}\n{oops}\n")
        let empty = try file("empty.jsonl", "")
        let errors = [
            (["plot", dir.path + "/missing.jsonl", "-o", output], "missing.jsonl: no such file"),
            (["plot", bad, "-o", output], "bad.jsonl:2: not a JSON object"),
            (["plot", empty, "-o", output], "empty.jsonl: no train or eval records"),
            (["plot", a, "-o", dir.path + "/no/such/dir/x.svg"], "the directory " + dir.path + "/no/such/dir does not exist"),
        ]
        for (arguments, message) in errors {
            let result = try BertProgram.run(arguments)
            #expect(result.status != 0 && result.err.contains(message), "\(result.err)")
            #expect(result.err.split(separator: "\n").count == 1, "one line: \(result.err)")
        }
        #expect(try String(contentsOfFile: output, encoding: .utf8) == svg, "a failed run leaves the old plot alone")
    }
}
