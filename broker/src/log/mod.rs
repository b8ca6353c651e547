//! placeholder
#[cfg(test)]
mod probe {
    #[test]
    fn glommio_starts() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async move {
                let d = std::env::temp_dir().join("floe-probe");
                let _ = std::fs::create_dir_all(&d);
                let f = glommio::io::OpenOptions::new().read(true).write(true).create(true).buffered_open(d.join("x")).await.unwrap();
                f.write_at(vec![1,2,3], 0).await.unwrap();
                f.fdatasync().await.unwrap();
                let r = f.read_at(0, 10).await.unwrap();
                assert_eq!(&r[..], &[1,2,3]);
                glommio::io::Directory::open(&d).await.unwrap().sync().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
