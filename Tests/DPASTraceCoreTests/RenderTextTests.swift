import Foundation
import Testing
@testable import DPASTraceCore

/// Renderers: pure string output with the seed's number style, aligned tables, lost events and warnings.
@Suite struct RenderTextTests {
    @Test func numbersLookLikeTheSeed() {
        #expect(Format.count(0) == "0")
        #expect(Format.count(999) == "999")
        #expect(Format.count(5_899) == "5,899")
        #expect(Format.count(55_273) == "55,273")
        #expect(Format.count(1_234_567_890) == "1,234,567,890")
        #expect(Format.count(-1_000) == "-1,000")
        #expect(Format.percent(0) == "0%")
        #expect(Format.percent(15.0 / 10_800.0) == "0.1%")
        #expect(Format.percent(55_273.0 / 55_388.0) == "99.8%")
        #expect(Format.percent(1) == "100%")
        #expect(Format.percent(0.0001) == "<0.1%")
        #expect(Format.percent(0.99999) == ">99.9%")
        #expect(Format.percent(nil) == "–")
        #expect(Format.duration(UInt64(950)) == "950 ns")
        #expect(Format.duration(UInt64(3_960)) == "3,960 ns")
        #expect(Format.duration(UInt64(12_400)) == "12.4 µs")
        #expect(Format.duration(UInt64(125_000)) == "125 µs")
        #expect(Format.duration(UInt64(1_250_000)) == "1.25 ms")
        #expect(Format.duration(UInt64(12_500_000)) == "12.50 ms")
        #expect(Format.duration(UInt64(20_000_000_000)) == "20.00 s")
        #expect(Format.queueDepth(x10: 35) == "3.5")
    }

    @Test func tablesAlignNumbersRightAndWordsLeft() {
        var table = TextTable([.init("Requested"), .init("Verdict", .left)])
        table.add(["100", "Never sleeps"])
        table.add(["3,960", "Normal sleep"])
        #expect(table.render() == [
            "Requested  Verdict",
            "---------  ------------",
            "      100  Never sleeps",
            "    3,960  Normal sleep",
        ])
    }

    func seedReport(lost: [Int: UInt64] = [:], warnings: [String] = []) -> SleepRatioReport {
        var accumulator = SleepRatioAccumulator()
        for event in SleepRatioAnalysisTests.seedEvents() { accumulator.add(event) }
        return accumulator.report(completeness: TraceCompleteness(lostEvents: LostEvents(perCPU: lost), warnings: warnings))
    }

    @Test func sleepRatioTableHasTheSeedsRows() throws {
        let text = TextRenderer.sleepRatio(seedReport())
        let lines = text.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("Requested (ns)") })
        #expect(header == "Requested (ns)  Attempts  No sleep   Slept  Sleep ratio  Verdict")
        #expect(lines.contains("           100     5,899     5,899       0           0%  Never sleeps"))
        #expect(lines.contains("         1,000     5,998     5,998       0           0%  Never sleeps"))
        #expect(lines.contains("         2,000    10,800    10,785      15         0.1%  Barely sleeps"))
        #expect(lines.contains("         3,960    55,388       115  55,273        99.8%  Normal sleep"))
        #expect(lines.contains { $0.hasPrefix("Never sleeps: the timer expires while it is being armed") })
        #expect(lines.contains { $0.hasPrefix("Verdict: 70.8% of 78,085 sleep attempts slept") })
        #expect(lines.last == "Lost events: 0")
    }

    @Test func everyRendererEndsWithLostEventsAndWarnings() {
        let lost: [Int: UInt64] = [1: 1_200, 3: 5]
        let warning = "run.dpt: damaged at byte 4096: truncated events chunk"
        let completeness = TraceCompleteness(lostEvents: LostEvents(perCPU: lost), warnings: [warning])
        let expected = [
            "Lost events: 1,205 (CPU 1: 1,200, CPU 3: 5) — the recorder dropped these, so the counts above miss them",
            "Warning: \(warning)",
        ]
        var analyses = TraceAnalyses()
        for event in SleepRatioAnalysisTests.seedEvents() + BucketAnalysisTests.mixedStream() { analyses.add(event) }
        let full = analyses.report(completeness: completeness)
        let outputs = [
            TextRenderer.sleepRatio(full.sleepRatio), TextRenderer.buckets(full.buckets), TextRenderer.modes(full.modes),
            TextRenderer.full(full), TextRenderer.sleepRatio(SleepRatioAccumulator().report(completeness: completeness)),
            TextRenderer.buckets(BucketAccumulator().report(completeness: completeness)),
        ]
        for output in outputs {
            let lines = output.split(separator: "\n").map(String.init)
            #expect(Array(lines.suffix(2)) == expected)
            #expect(lines.filter { $0.hasPrefix("Lost events:") }.count == 1)
        }
    }

    @Test func bucketTextSpellsOutTheCause() {
        var accumulator = BucketAccumulator()
        for event in BucketAnalysisTests.mixedStream() { accumulator.add(event) }
        let text = TextRenderer.buckets(accumulator.report())
        #expect(text.contains("    -1  read      1,000   1,000            1,000  off               8 × 1,000"))
        #expect(text.contains("Bucket −1: 64.5% of polled I/O (1,000 of 1,550) got bucket −1\n"))
        #expect(text.contains("Cause: QUEUE_FLAG_STATS is off on this queue ⇒ stats_sectors is 0 ⇒"))
        #expect(text.contains("Fix 1 (bucket from blk_rq_sectors) would change the bucket of 1,200 of 1,750 requests."))
    }

    @Test func modeTextShowsTimelineMatrixAndShares() {
        var accumulator = ModeAccumulator(timelineLimit: 2)
        for event in ModeAnalysisTests.script() { accumulator.add(event) }
        let text = TextRenderer.modes(accumulator.report())
        #expect(text.contains("CPU 0: 5 transitions, mode at the end: CP"))
        #expect(text.contains("0.000005 s  PAS   OL      1.2   3          100"))
        #expect(text.contains("… 1 more …"))
        #expect(text.contains("  PAS          0   1    0   1    0"))
        #expect(text.contains("  PAS   5,000 ns       35.7%   100     100      49.8%"))
    }

    @Test func sleepRatioJSONHasTheDocumentedKeys() throws {
        let json = try JSONRenderer.render(seedReport(lost: [0: 2]))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["row_kind", "rows", "totals", "verdict", "lost_events", "warnings"])
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(Set(rows[0].keys) == ["requested_ns", "attempts", "slept", "no_sleep", "unknown", "woke_early", "fired_during_arm",
                                      "sleep_ratio", "actual_sleep", "oversleep", "verdict_code", "verdict"])
        // An empty distribution keeps its keys, as nulls.
        let emptySleep = try #require(rows[0]["actual_sleep"] as? [String: Any])
        #expect(Set(emptySleep.keys) == ["count", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "max_ns"])
        #expect(emptySleep["p50_ns"] is NSNull)
        #expect(rows[2]["sleep_ratio"] as? Double == 15.0 / 10_800.0)
        let totals = try #require(object["totals"] as? [String: Any])
        #expect(totals["lost_events"] as? Int == 2)
        let lost = try #require(object["lost_events"] as? [String: Any])
        #expect(lost["total"] as? Int == 2)
        #expect((lost["per_cpu"] as? [[String: Any]])?.first?["cpu"] as? Int == 0)
        // Sorted keys: stable output.
        #expect(json.range(of: "\"lost_events\"")!.lowerBound < json.range(of: "\"row_kind\"")!.lowerBound)

        let decoded = try JSONDecoder().decode(SleepRatioReport.self, from: Data(json.utf8))
        #expect(decoded == seedReport(lost: [0: 2]))
    }

    @Test func fullReportJSONRoundTrips() throws {
        var analyses = TraceAnalyses(sleepPerCPU: true)
        for event in SleepRatioAnalysisTests.seedEvents() + BucketAnalysisTests.mixedStream() + ModeAnalysisTests.script() {
            analyses.add(event)
        }
        let source = ReportSource(path: "run.dpt", kernelRelease: "5.18.0-rc6-dpas-fast26", toolVersion: "0.1.0", device: nil,
                                  events: 80_041, firstTsNs: 0, lastTsNs: 781_850_000, complete: true, reason: nil)
        let report = analyses.report(source: source, completeness: TraceCompleteness(lostEvents: LostEvents(perCPU: [1, 2])))
        let json = try JSONRenderer.render(report)
        #expect(try JSONDecoder().decode(FullReport.self, from: Data(json.utf8)) == report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let modes = try #require(object["modes"] as? [String: Any])
        let cpu = try #require((modes["cpus"] as? [[String: Any]])?.first)
        #expect((cpu["matrix"] as? [String: [String: Int]])?["PAS"]?["OL"] == 1)
        #expect((cpu["first_transitions"] as? [[String: Any]])?.first?["avg_qd"] as? Double == 1.2)
        #expect((object["source"] as? [String: Any])?["device"] is NSNull)
    }

    @Test func log2RowsCarryTheirBoundsInJSON() throws {
        var accumulator = SleepRatioAccumulator()
        for value in 1...17 { accumulator.add(cpu: 0, requestedNs: UInt64(value) * 1_000, slept: true, actualNs: 30_000) }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(JSONRenderer.render(accumulator.report()).utf8)) as? [String: Any])
        #expect(object["row_kind"] as? String == "log2")
        let first = try #require((object["rows"] as? [[String: Any]])?.first)
        #expect(first["requested_min_ns"] as? Int == 512 && first["requested_max_ns"] as? Int == 1_023)
        #expect(first["requested_ns"] == nil)
        #expect(TextRenderer.sleepRatio(accumulator.report()).contains("Requested range (ns)"))
    }
}
