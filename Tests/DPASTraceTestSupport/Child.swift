#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A child process for tests, spawned with `posix_spawn` and reaped with `waitpid`.
///
/// Not Foundation's `Process`: on Linux its `waitUntilExit` was seen hanging forever after a
/// child that daemonizes (`tmux new-session`), and its pipes are inherited by children spawned
/// concurrently from other tests, so a tmux server could hold another test's pipe open and its
/// read-to-EOF never ended. Here every pipe is close-on-exec, and every wait has a deadline.
public final class Child: @unchecked Sendable {
    /// Where a child's stdout or stderr goes.
    public enum Output: Sendable {
        /// Collected as it arrives; read with `stdout` / `stderr`.
        case capture
        /// `/dev/null` — for children that may leave a daemon holding the descriptor (tmux).
        case discard
    }

    public enum Termination: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)
        /// Still running at the deadline: it was killed with SIGKILL.
        case timedOut(seconds: Double)

        public var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .signaled(let signal): "killed by signal \(signal)"
            case .timedOut(let seconds): "still running after \(seconds) s (killed)"
            }
        }
    }

    public let pid: pid_t
    public let commandLine: String
    private let lock = NSLock()
    private var stdoutBytes: [UInt8] = []
    private var stderrBytes: [UInt8] = []
    private var termination: Termination?
    private var readers: [Thread] = []
    private let readersDone = DispatchGroup()

    /// Starts `executable` with `arguments`. `stdinPath` (or `/dev/null`) becomes its stdin.
    public init(_ executable: String, _ arguments: [String], stdinPath: String? = nil,
                stdout: Output = .capture, stderr: Output = .capture) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)

        var parentEnds: [(fd: Int32, isStdout: Bool)] = []
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        for (target, mode) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch mode {
            case .discard:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .capture:
                var fds: [Int32] = [0, 0]
                // pipe2 is not visible to Swift: set close-on-exec right after (every spawn here does the same).
                guard pipe(&fds) == 0 else { throw ChildError("pipe: \(String(cString: strerror(errno)))") }
                fds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
                // dup2 onto 1/2 clears close-on-exec for the child's copy only.
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
                parentEnds.append((fds[0], target == 1))
                childEnds.append(fds[1])
            }
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var spawned: pid_t = 0
        let status = posix_spawn(&spawned, executable, &actions, nil, argv, environ)
        guard status == 0 else {
            parentEnds.forEach { close($0.fd) }
            throw ChildError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = spawned
        for end in parentEnds { startReader(fd: end.fd, isStdout: end.isStdout) }
    }

    private func startReader(fd: Int32, isStdout: Bool) {
        readersDone.enter()
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                lock.lock()
                if isStdout { stdoutBytes += buffer[0..<count] } else { stderrBytes += buffer[0..<count] }
                lock.unlock()
            }
            close(fd)
            readersDone.leave()
        }
        thread.start()
    }

    public var stdoutData: [UInt8] { lock.lock(); defer { lock.unlock() }; return stdoutBytes }
    public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    public var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: stderrBytes, as: UTF8.self) }

    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }
    public func interrupt() { signal(SIGINT) }

    /// Reaps the child if it has ended; never blocks.
    public var isRunning: Bool {
        lock.lock(); defer { lock.unlock() }
        return reapLocked(blocking: false) == nil
    }

    private func reapLocked(blocking: Bool) -> Termination? {
        if let termination { return termination }
        var status: Int32 = 0
        let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
        guard result == pid else { return nil }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7f
        termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
        return termination
    }

    /// Waits until the child ends, at most `timeout` seconds; then kills it. Output written before
    /// the end is collected (a grandchild still holding the pipe is given 5 s, then ignored).
    @discardableResult
    public func wait(timeout: Double = 300) -> Termination {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            lock.lock()
            let ended = reapLocked(blocking: false)
            lock.unlock()
            if let ended {
                _ = readersDone.wait(timeout: .now() + 5)
                return ended
            }
            if Date() >= deadline { break }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        lock.lock()
        _ = reapLocked(blocking: true)
        termination = .timedOut(seconds: timeout)
        lock.unlock()
        _ = readersDone.wait(timeout: .now() + 5)
        return .timedOut(seconds: timeout)
    }

    /// The exit status, or -1 when it ended any other way.
    public func exitStatus(timeout: Double = 300) -> Int32 {
        if case .exited(let status) = wait(timeout: timeout) { return status }
        return -1
    }

    /// Runs to completion (killed after `timeout` s) and returns what it printed.
    public static func run(_ executable: String, _ arguments: [String], stdinPath: String? = nil,
                           timeout: Double = 300) throws -> (status: Int32, termination: Termination, stdout: String, stderr: String) {
        let child = try Child(executable, arguments, stdinPath: stdinPath)
        let termination = child.wait(timeout: timeout)
        var status: Int32 = -1
        if case .exited(let code) = termination { status = code }
        return (status, termination, child.stdout, child.stderr)
    }

    /// Runs a command whose output does not matter and which may leave a daemon behind (tmux).
    @discardableResult
    public static func runDiscardingOutput(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> Termination {
        try Child(executable, arguments, stdout: .discard, stderr: .discard).wait(timeout: timeout)
    }
}

public struct ChildError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
