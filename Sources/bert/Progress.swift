import BERT
import Foundation

/// Training progress: a live bar on a terminal (stderr), plain lines otherwise (stdout). Lines are written straight
/// to the file descriptor, not through `print`'s buffer, so `bert pretrain … | tee log` shows each as it happens.
final class Progress {
    private let terminal = isatty(STDERR_FILENO) != 0
    private var barShown = false
    /// Ranks other than 0 keep quiet.
    private let silent: Bool

    init(silent: Bool = false) { self.silent = silent }

    /// A pre-training step.
    func step(_ r: StepReport) {
        show(step: r.step, of: r.totalSteps, elapsed: r.elapsed, String(
            format: "loss %.4f (mlm %.4f nsp %.4f) lr %.3g %.1f seq/s %.0f tok/s", r.loss, r.mlmLoss, r.nspLoss,
            r.learningRate, r.sequencesPerSecond, r.tokensPerSecond))
    }

    /// A fine-tuning step; without a terminal, every 10th and the last become lines.
    func step(_ r: FineTuningOptions.Step) {
        guard terminal || r.step % 10 == 0 || r.step == r.totalSteps else { return }
        show(step: r.step, of: r.totalSteps, elapsed: r.elapsed,
             String(format: "loss %.4f lr %.3g %.1f seq/s", r.loss, r.learningRate, r.sequencesPerSecond))
    }

    /// `step N/M <detail> ETA` as the bar's text or a line.
    private func show(step: Int, of total: Int, elapsed: Double, _ detail: String) {
        guard !silent else { return }
        let remaining = Double(total - step) * elapsed / Double(max(1, step))
        let text = "step \(step)/\(total) \(detail) ETA \(duration(remaining))"
        if terminal {
            let width = 24, filled = width * step / max(1, total)
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(text)\u{1B}[K".utf8))
            barShown = true
        } else {
            line(text)
        }
    }

    func message(_ text: String) {
        guard !silent else { return }
        if barShown { FileHandle.standardError.write(Data("\n".utf8)); barShown = false }
        line(text)
    }

    func line(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

    func finish() { if barShown { FileHandle.standardError.write(Data("\n".utf8)); barShown = false } }

    private func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s % 3600 / 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
