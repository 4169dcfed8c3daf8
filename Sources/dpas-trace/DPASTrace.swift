import ArgumentParser
import DPASTraceCore

@main
struct DPASTrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpas-trace",
        abstract: "Trace the block layer's polled-I/O completion path: hybrid sleeps, poll buckets, DPAS modes.",
        version: DPASTraceVersion.string,
        subcommands: [
            SleepRatioCommand.self,
            BucketsCommand.self,
            ModesCommand.self,
            ReportCommand.self,
            DumpCommand.self,
            DoctorCommand.self,
            PlanCommand.self,
            RecordCommand.self,
            TopCommand.self,
        ]
    )
}
