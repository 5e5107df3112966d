//! The event loop: runs Protocols on mio (epoll).
